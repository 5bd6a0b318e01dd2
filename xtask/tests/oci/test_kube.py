"""The Deployment and ConfigMap of pkg/kubernetes/ai-proxy.yaml run for real with `podman kube
play` on the image loaded from pkg/ai-proxy-oci.tar: it answers /ping and an OpenAI SDK request,
and the hardening podman honours is measured from outside (/proc, podman inspect). What podman
ignores is printed, not asserted, so the report stays true as podman changes.

Changed from the shipped file, and only this: names (unique per run), replicas 1 (podman makes
one pod per replica, all on the same hostPort), a hostPort on 127.0.0.1 (no cluster Service
here), the image name podman gave the loaded archive, the Secret name, and the ConfigMap's
provider-config.yaml pointing at the mock upstream."""

import base64
import json
import os
import socket
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import (
    GID, LABEL, MANIFESTS, OCI_ARCHIVE, RUN_ID, UID, assert_forwarded, chat, env_text, limit_within,
    ping,
    proc_status, provider_config, root_is_read_only, run, upstream_in_netns, version, wait_for,
)

LABEL_KEY, LABEL_VALUE = LABEL.split("=")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def podman_env():
    """podman with default ulimits capped below this host's hard limits (kube play has no
    --ulimit flag, and this sandbox cannot raise rlimits): CONTAINERS_CONF replaces the system
    file, so its settings are kept and the cap added to its [containers] table."""
    system = Path("/etc/containers/containers.conf")
    text = system.read_text() if system.exists() else ""
    nofile, nproc = limit_within(20000, "-Hn"), limit_within(4096, "-Hu")
    line = f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
    if "[containers]" in text:
        text = text.replace("[containers]\n", "[containers]\n" + line, 1)
    else:
        text = "[containers]\n" + line + text
    handle, path = tempfile.mkstemp(prefix=f"{RUN_ID}-", suffix=".conf")
    os.write(handle, text.encode())
    os.close(handle)
    env = dict(os.environ, CONTAINERS_CONF=path)
    yield env
    os.unlink(path)


@pytest.fixture(scope="module")
def image(podman_env):
    before = {l for l in run("podman", "images", "-q", "--no-trunc", env=podman_env).stdout.split()}
    out = run("podman", "load", "-i", OCI_ARCHIVE, env=podman_env, timeout=300)
    loaded = [l.split("Loaded image:")[-1].strip() for l in (out.stdout + out.stderr).splitlines() if "Loaded image" in l]
    assert loaded and loaded[0].endswith(f"ai-proxy:{version()}"), out.stdout + out.stderr
    image_id = run("podman", "image", "inspect", "--format", "{{.Id}}", loaded[0], env=podman_env).stdout.strip()
    yield loaded[0]
    if f"sha256:{image_id}" not in before and image_id not in before:
        run("podman", "rmi", loaded[0], check=False, env=podman_env)


def kube_yaml(image, host_port, secret):
    docs = [d for d in yaml.safe_load_all((MANIFESTS / "ai-proxy.yaml").read_text()) if d]
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    configmap["metadata"]["name"] = f"{RUN_ID}-config"
    configmap["data"]["provider-config.yaml"] = provider_config()
    deployment["metadata"]["name"] = RUN_ID
    deployment["spec"]["replicas"] = 1
    template = deployment["spec"]["template"]
    template["metadata"]["labels"][LABEL_KEY] = LABEL_VALUE
    pod = template["spec"]
    container = pod["containers"][0]
    container["image"] = image
    container["ports"][0].update(hostPort=host_port, hostIP="127.0.0.1")
    container["envFrom"][0]["secretRef"]["name"] = secret
    next(v for v in pod["volumes"] if v["name"] == "config")["configMap"]["name"] = configmap["metadata"]["name"]
    return yaml.safe_dump_all([configmap, deployment], sort_keys=False)


def test_kube_play(image, podman_env, tmp_path):
    env = podman_env
    secret = f"{RUN_ID}-env"
    # podman reads envFrom's secretRef from its own secret store, as a JSON map of base64 values
    # (a Kubernetes Secret's `data`), not from a Secret document in the played file.
    data = dict(line.split("=", 1) for line in env_text().splitlines())
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in data.items()}))
    run("podman", "secret", "rm", secret, check=False, env=env)
    run("podman", "secret", "create", secret, secret_file, env=env)
    host_port = free_port()
    played = tmp_path / "play.yaml"
    played.write_text(kube_yaml(image, host_port, secret))
    pods = []
    try:
        out = run("podman", "kube", "play", played, env=env, timeout=300)
        print(out.stdout, out.stderr)
        pods = run("podman", "pod", "ps", "-q", "--filter", f"label={LABEL}", "--filter", f"name={RUN_ID}", env=env).stdout.split()
        assert len(pods) == 1, f"expected one pod, found {pods}"
        containers = json.loads(run("podman", "ps", "-a", "--format", "json", "--filter", f"pod={pods[0]}", env=env).stdout)
        app = next(c for c in containers if not c.get("IsInfra") and "ai-proxy" in c["Names"][0])
        name = app["Names"][0]
        wait_for(f"{name} to answer /ping on 127.0.0.1:{host_port}", lambda: ping(host_port), timeout=60)
        info = json.loads(run("podman", "container", "inspect", name, env=env).stdout)[0]
        pid = info["State"]["Pid"]

        upstream = upstream_in_netns(pid)
        try:
            assert_forwarded(upstream, chat(host_port))
        finally:
            upstream.server.shutdown()

        status = proc_status(pid)
        mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        mount = {l.split()[4]: l.split() for l in mounts}
        host = info["HostConfig"]
        report = {
            "runAsUser/runAsGroup": (status["uid"] == [str(UID)] * 2 and status["gid"] == [str(GID)] * 2, f"uid {status['uid']}, gid {status['gid']}"),
            "readOnlyRootFilesystem": (root_is_read_only(pid), "/ is mounted ro"),
            "capabilities drop ALL": (int(status["cap_eff"], 16) == 0 and int(status["cap_bnd"], 16) == 0, f"CapEff {status['cap_eff']}, CapBnd {status['cap_bnd']}"),
            "allowPrivilegeEscalation false": (status["no_new_privs"] == "1", f"NoNewPrivs {status['no_new_privs']}"),
            "seccompProfile RuntimeDefault": (status["seccomp"] == "2", f"Seccomp mode {status['seccomp']} ({host.get('SecurityOpt')})"),
            "limits memory 512Mi": (host.get("Memory") == 512 * 1024 * 1024, f"Memory {host.get('Memory')}"),
            "limits cpu 500m": (host.get("CpuQuota") == 50000 and host.get("CpuPeriod") == 100000 or host.get("NanoCpus") == 500_000_000, f"CpuQuota {host.get('CpuQuota')}/{host.get('CpuPeriod')}, NanoCpus {host.get('NanoCpus')}"),
            "configMap volume read-only at /app/config": ("/app/config" in mount and "ro" in mount["/app/config"][5].split(","), " ".join(mount.get("/app/config", ["absent"])[4:6])),
            "emptyDir medium Memory at /tmp": (fstype(mount, "/tmp") == "tmpfs", f"/tmp is {fstype(mount, '/tmp')}"),
            "terminationGracePeriodSeconds": (info["Config"].get("StopTimeout") == deployment_grace(), f"StopTimeout {info['Config'].get('StopTimeout')}, manifest {deployment_grace()}"),
            "livenessProbe httpGet /ping": liveness(info, name, env),
            "env PORT + envFrom secret": (True, "the proxy started with AUTH_TOKEN from the podman secret and answered on the container port"),
        }
        print("\npodman kube play (podman " + run("podman", "--version", env=env).stdout.split()[-1] + "):")
        for field, (honoured, evidence) in report.items():
            print(f"  {'honoured' if honoured else 'IGNORED '}  {field}: {evidence}")
        print("  not represented: readinessProbe, lifecycle.preStop.sleep, automountServiceAccountToken, enableServiceLinks")
        for field in ("runAsUser/runAsGroup", "readOnlyRootFilesystem", "capabilities drop ALL"):
            assert report[field][0], f"podman kube play no longer honours {field}: {report[field][1]}"
    finally:
        # A play that failed part way (the pod created, a container refused) left a pod that
        # `pods` never learnt of: look again, by this run's unique name.
        found = run("podman", "pod", "ps", "-q", "--filter", f"name={RUN_ID}", check=False, env=env).stdout.split()
        for pod in dict.fromkeys(pods + found):
            logs = run("podman", "pod", "logs", pod, check=False, env=env)
            print(logs.stdout[-2000:], logs.stderr[-2000:])
            run("podman", "pod", "rm", "-f", pod, check=False, env=env)
        run("podman", "secret", "rm", secret, check=False, env=env)
    left = run("podman", "pod", "ps", "-q", "--filter", f"label={LABEL}", "--filter", f"name={RUN_ID}", env=env).stdout.strip()
    assert left == "", f"pods left behind: {left}"


def fstype(mount, path):
    """The filesystem type of a mountinfo line (after its ` - ` separator), or `absent`."""
    fields = mount.get(path)
    return fields[fields.index("-") + 1] if fields else "absent"


def liveness(info, name, env):
    """podman turns an httpGet probe into a healthcheck; whether it can pass in this image."""
    check = info["Config"].get("Healthcheck")
    if not check:
        return False, "no healthcheck made from it"
    passes = run("podman", "healthcheck", "run", name, check=False, env=env).returncode == 0
    test = " ".join(check["Test"])
    if passes:
        return True, f"became the healthcheck `{test}`, which passes"
    return False, f"became the healthcheck `{test}`, which fails here: the scratch image has no shell or curl"


def deployment_grace():
    docs = yaml.safe_load_all((MANIFESTS / "ai-proxy.yaml").read_text())
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
