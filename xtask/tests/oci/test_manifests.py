"""pkg/kubernetes/: valid against the Kubernetes OpenAPI schemas (offline, strict: a misspelt
field fails), and a policy that fails when any container or pod lacks a hardening field the
issue promises, or when the shutdown budget is shorter than the proxy's drain."""

import copy
import re
import subprocess
import tempfile

import pytest
import yaml

from conftest import GID, MANIFESTS, PORT, ROOT, UID

KINDS = {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}


@pytest.fixture(scope="module")
def docs():
    return [d for d in yaml.safe_load_all((MANIFESTS / "ai-proxy.yaml").read_text()) if d]


def by_kind(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("kubernetes", ["1.30.0", "1.37.0"])
def test_schemas_strict(kubernetes):
    # 1.30: the oldest version with lifecycle.preStop.sleep on by default (docs/kubernetes.md).
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "-k", kubernetes, str(MANIFESTS / "ai-proxy.yaml")],
        capture_output=True, text=True, check=False)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(KINDS), result.stdout
    assert f"against version {kubernetes.rsplit('.', 1)[0]}" in result.stdout, result.stdout


def test_schemas_catch_a_misspelt_field():
    broken = (MANIFESTS / "ai-proxy.yaml").read_text().replace("readOnlyRootFilesystem", "readOnlyRootFileSystem")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(broken)
        handle.flush()
        result = subprocess.run(["kubernetes-validate", "--strict", handle.name], capture_output=True, text=True, check=False)
    assert result.returncode != 0, "kubernetes-validate --strict accepted readOnlyRootFileSystem"


def test_every_kind_and_no_secret(docs):
    assert {d["kind"] for d in docs} == KINDS
    text = (MANIFESTS / "ai-proxy.yaml").read_text()
    assert "kind: Secret" not in text, "the Secret is created from .env by the admin, never shipped"


def test_kustomization_lists_the_manifest():
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["resources"] == ["ai-proxy.yaml"]


def containers(pod_spec):
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def hardening_problems(pod):
    """Every hardening field the issue promises that `pod` (a pod spec) lacks."""
    problems = []
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("pod: automountServiceAccountToken is not false")
    psc = pod.get("securityContext", {})
    for key, want in [("runAsNonRoot", True), ("runAsUser", UID), ("runAsGroup", GID)]:
        if psc.get(key) != want:
            problems.append(f"pod securityContext.{key} is {psc.get(key)!r}, expected {want!r}")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod securityContext.seccompProfile.type is not RuntimeDefault")
    for c in containers(pod):
        sc = c.get("securityContext", {})
        where = f"container {c['name']}"
        for key, want in [("runAsNonRoot", True), ("runAsUser", UID), ("runAsGroup", GID),
                          ("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)]:
            if sc.get(key) != want:
                problems.append(f"{where}: securityContext.{key} is {sc.get(key)!r}, expected {want!r}")
        if sc.get("privileged", False):
            problems.append(f"{where}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{where}: capabilities must drop ALL and add none")
        if sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
            problems.append(f"{where}: seccompProfile is not RuntimeDefault")
        limits = c.get("resources", {}).get("limits", {})
        if limits.get("memory") != "512Mi" or limits.get("cpu") != "500m":
            problems.append(f"{where}: limits are {limits}, expected memory 512Mi and cpu 500m")
        for probe in ("readinessProbe", "livenessProbe"):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != "/ping" or get.get("port") != PORT:
                problems.append(f"{where}: {probe} is not httpGet /ping on port {PORT} (numeric)")
    return problems


def test_policy_hardening(docs):
    problems = hardening_problems(by_kind(docs, "Deployment")["spec"]["template"]["spec"])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", [
    ("securityContext", "runAsNonRoot"), ("securityContext", "runAsGroup"),
    ("securityContext", "seccompProfile"), ("automountServiceAccountToken",),
    ("containers", 0, "securityContext", "readOnlyRootFilesystem"),
    ("containers", 0, "securityContext", "allowPrivilegeEscalation"),
    ("containers", 0, "securityContext", "capabilities"),
    ("containers", 0, "resources", "limits"), ("containers", 0, "livenessProbe"),
])
def test_policy_fails_without_each_field(docs, path):
    pod = copy.deepcopy(by_kind(docs, "Deployment")["spec"]["template"]["spec"])
    parent = pod
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert hardening_problems(pod), f"the policy passed a pod without {'.'.join(map(str, path))}"


def test_rollout_and_shutdown_budget(docs):
    deployment = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    source = (ROOT / "proxy/src/config/settings.rs").read_text()
    drain = int(re.search(r"DEFAULT_SHUTDOWN_GRACE_SECS: u64 = (\d+);", source).group(1))
    prestop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert prestop > 0
    assert pod["terminationGracePeriodSeconds"] > prestop + drain, (pod["terminationGracePeriodSeconds"], prestop, drain)
    mounts = pod["containers"][0]["volumeMounts"]
    config = next(m for m in mounts if m["mountPath"] == "/app/config")
    assert "subPath" not in config, "a subPath mount never sees ConfigMap updates"


def test_service_budget_autoscaler_policy(docs):
    selector = {"app.kubernetes.io/name": "ai-proxy"}
    deployment = by_kind(docs, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()
    service = by_kind(docs, "Service")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert by_kind(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    policy = by_kind(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [{"ports": [{"port": PORT, "protocol": "TCP"}]}]
