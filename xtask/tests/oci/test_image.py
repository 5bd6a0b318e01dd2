"""pkg/ai-proxy-oci.tar in a real engine (ENGINE=docker or podman): `load` accepts it, the image
is what the Dockerfile says, and it runs with the installer's hardening flags, healthy, serving an
OpenAI SDK request forwarded to a mock upstream."""

import json
import os
import tarfile

import pytest

from conftest import (
    GID, LABEL, OCI_ARCHIVE, PORT, RUN_ID, UID, assert_forwarded, chat, inspect, installer_run_flags,
    ping, proc_status, root_is_read_only, run, unauthorized, upstream_in_netns, version, wait_for,
    write_config,
)

ENGINE = os.environ.get("ENGINE", "")
assert ENGINE in ("docker", "podman"), "set ENGINE=docker or ENGINE=podman"


@pytest.fixture(scope="module")
def image():
    """The archive loaded into the engine; removed afterwards unless it was there before."""
    name = f"ai-proxy:{version()}"
    before = run(ENGINE, "image", "inspect", name, check=False).returncode == 0
    out = run(ENGINE, "load", "-i", OCI_ARCHIVE, timeout=300)
    loaded = (out.stdout + out.stderr).strip()
    print(f"{ENGINE} load: {loaded}")
    assert name in loaded, f"`{ENGINE} load` did not name the image {name}: {loaded}"
    yield name
    if not before:
        run(ENGINE, "rmi", name, check=False)


def archive_healthcheck():
    """The healthcheck in the archive's image config, as the release wrote it."""
    with tarfile.open(OCI_ARCHIVE) as archive:
        docker = json.load(archive.extractfile("manifest.json"))
        config = json.load(archive.extractfile(docker[0]["Config"]))
    return config["config"]["Healthcheck"]


def image_healthcheck(config):
    """The healthcheck in `ENGINE image inspect` output: docker keeps it in Config, podman at
    the top level."""
    return config["Config"].get("Healthcheck") or config.get("Healthcheck")


def health_flags(image):
    """Nothing when the engine kept the image's healthcheck; else the same check as flags."""
    config = inspect(ENGINE, "image", image)
    if image_healthcheck(config):
        return []
    check = archive_healthcheck()
    seconds = lambda ns: f"{ns // 1_000_000_000}s"
    assert check["Test"][0] == "CMD"
    return ["--health-cmd", json.dumps(check["Test"][1:]), "--health-interval", seconds(check["Interval"]),
            "--health-timeout", seconds(check["Timeout"]), "--health-start-period", seconds(check["StartPeriod"]),
            "--health-retries", str(check["Retries"])]


def test_image_config_matches_the_dockerfile(image):
    config = inspect(ENGINE, "image", image)
    c = config["Config"]
    assert c["User"] == f"{UID}:{GID}"
    assert c["Entrypoint"] == ["/app/ai-proxy"]
    assert c["Cmd"] == ["serve", "--config-dir", "/app/config"]
    assert f"{PORT}/tcp" in c["ExposedPorts"]
    assert c["Labels"]["org.opencontainers.image.version"] == version()
    health = image_healthcheck(config)
    if ENGINE == "docker" or health:
        assert health and health["Test"] == archive_healthcheck()["Test"], config
    else:
        # Podman 4.3 reads a healthcheck only from a Docker-format config, and `podman load`
        # takes the OCI view of the archive: runs must pass it (docs/kubernetes.md).
        print("podman load: the image's healthcheck was dropped (OCI-format config)")
    assert config["Architecture"] == "amd64" and config["Os"] == "linux"


def test_runs_hardened_healthy_and_serves(image, tmp_config):
    name = f"{RUN_ID}-{ENGINE}"
    config = write_config(tmp_config)
    flags = installer_run_flags(ENGINE, config)
    run(ENGINE, "rm", "-f", name, check=False)
    try:
        run(ENGINE, "run", "-d", "--name", name, "--label", LABEL, *flags, *health_flags(image),
            "-p", f"127.0.0.1::{PORT}", image)
        pid = int(inspect(ENGINE, "container", name, "{{.State.Pid}}"))
        published = run(ENGINE, "port", name, f"{PORT}/tcp").stdout.split()[0]
        port = int(published.rsplit(":", 1)[1])

        def healthy():
            if ENGINE == "podman":
                # Without systemd nothing runs podman's health timer: run the image's check now.
                run("podman", "healthcheck", "run", name, check=False)
            return inspect(ENGINE, "container", name, "{{.State.Health.Status}}") == "healthy"

        wait_for(f"{name} to be healthy", healthy, timeout=60)
        assert ping(port)

        status = proc_status(pid)
        assert status["uid"] == [str(UID)] * 2 and status["gid"] == [str(GID)] * 2, status
        assert int(status["cap_eff"], 16) == 0 and int(status["cap_bnd"], 16) == 0, status
        assert status["no_new_privs"] == "1", status
        assert status["seccomp"] == "2", status
        assert root_is_read_only(pid)

        upstream = upstream_in_netns(pid)
        try:
            assert unauthorized(port) == 401
            assert_forwarded(upstream, chat(port))
        finally:
            upstream.server.shutdown()
        assert inspect(ENGINE, "container", name, "{{.RestartCount}}") == "0"
    finally:
        logs = run(ENGINE, "logs", name, check=False)
        print(logs.stdout[-2000:], logs.stderr[-2000:])
        run(ENGINE, "rm", "-f", name, check=False)
    leftovers = run(ENGINE, "ps", "-aq", "--filter", f"label={LABEL}", "--filter", f"name={name}").stdout.strip()
    assert leftovers == "", f"containers left behind: {leftovers}"


if ENGINE == "podman":  # docker load keeps it already (test_image_config_matches_the_dockerfile)
    def test_podman_keeps_the_healthcheck_from_the_docker_view():
        """docs/kubernetes.md tells podman users `podman pull docker-archive:…` keeps the healthcheck."""
        name = f"localhost/ai-proxy:{version()}"
        before = run("podman", "image", "exists", name, check=False).returncode == 0
        run("podman", "pull", "-q", f"docker-archive:{OCI_ARCHIVE}", timeout=300)
        try:
            config = inspect("podman", "image", name)
            assert (image_healthcheck(config) or {}).get("Test") == archive_healthcheck()["Test"], config
            assert config["Config"]["User"] == f"{UID}:{GID}"
        finally:
            if not before:
                run("podman", "rmi", name, check=False)
