"""Shared by the image and Kubernetes end-to-end tests (`cargo xtask test --only oci-docker,
oci-podman,kubernetes`): the release in AI_PROXY_PKG, the installer's hardening flags read from
templates/installer.sh, a recording mock upstream started inside a container's own network
namespace (the proxy reaches it on 127.0.0.1 there; nothing listens on a host address), and
cleanup of everything a test creates, found by its label."""

import ctypes
import importlib.util
import json
import os
import re
import shlex
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PKG = Path(os.environ.get("AI_PROXY_PKG", ROOT / "pkg"))
OCI_ARCHIVE = PKG / "ai-proxy-oci.tar"
MANIFESTS = PKG / "kubernetes"
# What this suite creates carries this label; teardown removes exactly that.
LABEL = "io.github.ai-proxy.test=oci"
RUN_ID = f"aipx-oci-{os.getpid()}"
# Inside a container's private network namespace only the proxy listens (on 8080), so a fixed
# port for the mock there cannot collide with anything on the host.
UPSTREAM_PORT = 18081
PORT = 8080
UID = GID = 1001


def _load_sdk_mocks():
    """The SDK suite's recording mock upstream (proxy/tests/sdk/conftest.py), reused as is."""
    spec = importlib.util.spec_from_file_location("sdk_mocks", ROOT / "proxy/tests/sdk/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SDK = _load_sdk_mocks()
TOKEN = SDK.TOKEN
OPENAI_KEY = SDK.OPENAI_KEY
ANTHROPIC_KEY = SDK.ANTHROPIC_KEY


def run(*args, check=True, env=None, timeout=120):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"`{shlex.join(map(str, args))}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def version():
    text = (PKG / "installer.sh").read_text()
    return re.search(r'^readonly VERSION="(.*)"$', text, re.M).group(1)


def installer_run_flags(engine, config_dir):
    """The `RUN_OPTS` of templates/installer.sh's hardening_options, with its variables filled in
    as the installer would: the same flags, read from the one place they are written."""
    text = (ROOT / "templates/installer.sh").read_text()
    body = re.search(r"^hardening_options\(\) \{\n(.*?)^\}", text, re.M | re.S).group(1)
    tmpfs = re.search(r'tmpfs_options="([^"]+)"', body).group(1)
    block = re.search(r"RUN_OPTS=\(\n(.*?)\n\s*\)", body, re.S).group(1)
    wanted = {k: int(v) for k, v in re.findall(r"^readonly (WANTED_NOFILE|WANTED_NPROC)=(\d+)", text, re.M)}
    values = {
        "APP_UID": str(UID), "APP_GID": str(GID), "tmpfs_options": tmpfs, "CONFIG_DIR": str(config_dir),
        "nofile": str(limit_within(wanted["WANTED_NOFILE"], "-Hn")),
        "nproc": str(limit_within(wanted["WANTED_NPROC"], "-Hu")),
    }
    flags = []
    for word in shlex.split(block):
        def fill(match):
            name = match.group(1) or match.group(2)
            assert name in values, f"installer.sh's RUN_OPTS uses ${name}, which this test does not know"
            return values[name]
        flags.append(re.sub(r"\$\{?(\w+)\}?|\$(\w+)", fill, word))
    assert "--read-only" in flags and "--cap-drop" in flags, f"unexpected RUN_OPTS: {flags}"
    if engine == "podman" and "--read-only-tmpfs=false" in body:
        flags.append("--read-only-tmpfs=false")
    return flags


def limit_within(wanted, flag):
    """installer.sh's limit_within: the wanted rlimit, capped at this host's hard limit."""
    hard = run("bash", "-c", f"ulimit {flag}").stdout.strip()
    return wanted if hard == "unlimited" else min(wanted, int(hard))


def write_config(directory, upstream_port=UPSTREAM_PORT, env=True):
    """A config directory the container user can read: .env and a provider-config.yaml whose
    upstreams are the mock on 127.0.0.1 inside the container's network namespace."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    if env:
        (directory / ".env").write_text(env_text())
    (directory / "provider-config.yaml").write_text(provider_config(upstream_port))
    for path in [directory, *directory.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def env_text():
    return (f"PORT={PORT}\nAUTH_TOKEN={TOKEN}\n"
            f"OPENAI_API_KEY={OPENAI_KEY}\nANTHROPIC_API_KEY={ANTHROPIC_KEY}\n")


def provider_config(upstream_port=UPSTREAM_PORT):
    base = f"http://127.0.0.1:{upstream_port}"
    return (
        "providers:\n"
        f"  - name: openai\n    kind: openai\n    base_url: {base}/v1\n    api_key: ${{OPENAI_API_KEY}}\n"
        f"  - name: anthropic\n    kind: anthropic\n    base_url: {base}\n    api_key: ${{ANTHROPIC_API_KEY}}\n"
        "models:\n"
        "  - name: gpt-4o-mini\n    targets:\n      - provider: openai\n        model: upstream-gpt\n"
        "  - name: claude-haiku-4-5\n    targets:\n      - provider: anthropic\n        model: upstream-claude\n"
    )


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def upstream_in_netns(pid):
    """The SDK suite's mock upstream, listening on 127.0.0.1:UPSTREAM_PORT inside the network
    namespace of process `pid` (setns applies to one thread: the socket is made there)."""
    made, failed = [], []

    def start():
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                failed.append(OSError(ctypes.get_errno(), "setns into the container's network namespace"))
                return
        finally:
            os.close(fd)
        original = SDK.ThreadingHTTPServer
        SDK.ThreadingHTTPServer = lambda address, handler: original((address[0], UPSTREAM_PORT), handler)
        try:
            made.append(SDK.Upstream())
        except Exception as error:  # reported below, on the test's thread
            failed.append(error)
        finally:
            SDK.ThreadingHTTPServer = original

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def proc_status(pid):
    """The fields of /proc/PID/status that show the hardening from outside the container."""
    fields = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    return {
        "uid": fields["Uid"].split()[:2], "gid": fields["Gid"].split()[:2],
        "cap_eff": fields["CapEff"].strip(), "cap_bnd": fields["CapBnd"].strip(),
        "no_new_privs": fields["NoNewPrivs"].strip(), "seccomp": fields["Seccomp"].strip(),
    }


def root_is_read_only(pid):
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        parts = line.split()
        if parts[4] == "/":
            return "ro" in parts[5].split(",")
    pytest.fail(f"no / mount in /proc/{pid}/mountinfo")


def wait_for(what, predicate, timeout=60, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def ping(port):
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def chat(port):
    """One request through the official OpenAI SDK, with the client token."""
    import openai
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN, max_retries=0, timeout=20)
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def assert_forwarded(upstream, reply):
    assert reply.choices[0].message.content == "Hello from upstream"
    last = upstream.last()
    assert last["path"] == "/v1/chat/completions"
    assert last["body"]["model"] == "upstream-gpt"
    assert last["headers"]["authorization"] == f"Bearer {OPENAI_KEY}", "the upstream key was not sent"


def unauthorized(port):
    import urllib.error
    import urllib.request
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers={"authorization": "Bearer wrong-token-0123456789"})
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


@pytest.fixture
def tmp_config(tmp_path):
    # The container user (1001) must reach the files: pytest's tmp_path parents are 0700.
    directory = Path(tempfile.mkdtemp(prefix=f"{RUN_ID}-"))
    directory.chmod(0o755)
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=False)


def inspect(engine, kind, name, fmt=None):
    args = [engine, kind, "inspect", name] + (["--format", fmt] if fmt else [])
    out = run(*args).stdout
    return out.strip() if fmt else json.loads(out)[0]
