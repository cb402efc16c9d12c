"""The platform's Kubernetes manifests (deploy/kubernetes) and images (deploy/docker), checked
offline: every object against the Kubernetes schemas of a pinned version (kubernetes_validate,
strict), the kustomization complete, no real secret in the Secret templates and none inline,
every container bounded, probed and non-root, the server replicated and given every setting it
cannot start without; the Dockerfiles copy what exists and run what the gpu pool's template runs."""

from __future__ import annotations

import copy
import os
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
DOCKER = ROOT / "deploy" / "docker"
#: the Kubernetes version the manifests are checked against (also tests/integration/test_kubernetes_jobs.py)
K8S_VERSION = "1.33.0"
PLACEHOLDER = "CHANGE-ME"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# an env var by one of these names carries a credential: it must come from a Secret
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY|CONNECTION|DATABASE_URL|STORE_URI|CATALOG_URL")


def _documents() -> dict[str, list[dict[str, Any]]]:
    """Every Kubernetes object of deploy/kubernetes, by file (not the kustomization itself)."""
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
            for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"}


def _objects() -> list[dict[str, Any]]:
    return [d for docs in _documents().values() for d in docs]


def _one(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in _objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _pods() -> list[tuple[str, dict[str, Any]]]:
    """(workload name, its pod template) of every workload."""
    return [(d["metadata"]["name"], d["spec"]["template"]) for d in _objects() if d["kind"] in WORKLOADS]


def _containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod spec, container) of every container, init containers included."""
    return [(name, pod["spec"], c) for name, pod in _pods()
            for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]]


def _placeholder_problem(name: str, key: str, value: str) -> str | None:
    """Why ``value`` (key ``key`` of Secret ``name``) is not a placeholder; None when it is."""
    if "://" in value:
        password = urlsplit(value).password
        if password != PLACEHOLDER:
            return f"{name}/{key}: the URL's password is {password!r}, not {PLACEHOLDER}"
        return None
    if value != PLACEHOLDER:
        return f"{name}/{key}: {value!r} is not {PLACEHOLDER}"
    return None


def _secret_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for d in objects:
        if d["kind"] != "Secret":
            continue
        name = d["metadata"]["name"]
        if d.get("data"):
            problems.append(f"{name}: base64 data (a template holds readable placeholders only)")
        for key, value in (d.get("stringData") or {}).items():
            problem = _placeholder_problem(name, key, str(value))
            if problem:
                problems.append(problem)
    return problems


def test_every_object_validates_against_the_kubernetes_schemas() -> None:
    import kubernetes_validate

    objects = _objects()
    assert len(objects) >= 20
    for d in objects:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    kinds = {d["kind"] for d in objects}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "ServiceAccount", "Role",
            "RoleBinding", "NetworkPolicy", "PodDisruptionBudget"} <= kinds


def test_the_schema_check_catches_a_broken_manifest() -> None:
    import kubernetes_validate

    broken = copy.deepcopy(_one("Deployment", "assethub"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    unknown = copy.deepcopy(_one("Deployment", "assethub"))
    unknown["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_file_in_the_namespace() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert kustomization["namespace"] == "assethub"
    assert _one("Namespace", "assethub")
    # nothing names another namespace (the RoleBinding's subject names this one)
    for d in _objects():
        assert d["metadata"].get("namespace", "assethub") == "assethub", d["metadata"]


def test_no_secret_holds_a_real_looking_value_and_none_is_inline() -> None:
    objects = _objects()
    assert _secret_problems(objects) == []
    assert {d["metadata"]["name"] for d in objects if d["kind"] == "Secret"} == {
        "assethub-postgres", "assethub-s3", "assethub-lakefs", "assethub-jobs", "assethub-server"}
    secrets = {d["metadata"]["name"]: set(d["stringData"]) for d in objects if d["kind"] == "Secret"}
    configs = {d["metadata"]["name"]: set(d["data"]) for d in objects if d["kind"] == "ConfigMap"}
    for workload, _, container in _containers():
        for var in container.get("env", []):
            where = f"{workload}/{container['name']}: {var['name']}"
            if SECRET_NAME.search(var["name"]):
                assert "value" not in var and "secretKeyRef" in var["valueFrom"], where
            ref = var.get("valueFrom", {})
            if "secretKeyRef" in ref:  # names a Secret and key that the templates define
                assert ref["secretKeyRef"]["key"] in secrets[ref["secretKeyRef"]["name"]], where
            if "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["key"] in configs[ref["configMapKeyRef"]["name"]], where
        assert not container.get("envFrom"), "each variable named: nothing arrives unseen"


def test_the_secret_check_catches_a_real_looking_value() -> None:
    real = {"kind": "Secret", "metadata": {"name": "x"}, "stringData": {
        "db": "postgresql+psycopg://u:S3cr3t-Pa55@db:5432/x", "key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
        "fine": PLACEHOLDER, "url": f"postgres://u:{PLACEHOLDER}@db/x"}}
    assert _secret_problems([real]) == [
        "x/db: the URL's password is 'S3cr3t-Pa55', not CHANGE-ME",
        "x/key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY' is not CHANGE-ME"]
    assert _secret_problems([{**real, "stringData": {}, "data": {"k": "c2VjcmV0"}}]) == [
        "x: base64 data (a template holds readable placeholders only)"]


def test_every_container_is_bounded_probed_and_unprivileged() -> None:
    containers = _containers()
    assert {w for w, _, _ in containers} == {"assethub", "lakefs", "prefect-server", "prefect-worker",
                                             "mlflow"}
    for workload, pod, c in containers:
        where = f"{workload}/{c['name']}"
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][bound]), where
        if c.get("ports"):  # it serves: Kubernetes knows when it is ready and when it hangs
            assert c["readinessProbe"] and c["livenessProbe"], where
        pod_security, security = pod.get("securityContext", {}), c["securityContext"]
        assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
        assert security.get("runAsUser", pod_security.get("runAsUser")) not in (None, 0), where
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["capabilities"] == {"drop": ["ALL"]}, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert ":" in c["image"] and not c["image"].endswith(":"), where
        # a read-only root: every place it writes is a volume of its own
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, where
        # no Kubernetes API token unless it talks to Kubernetes (the worker)
        if workload != "prefect-worker":
            assert pod["automountServiceAccountToken"] is False, where


def test_labels_and_selectors_hold_together() -> None:
    pods = dict(_pods())
    for d in _objects():
        labels = d["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "assethub", d["metadata"]["name"]
        assert "app.kubernetes.io/name" in labels, d["metadata"]["name"]
        if d["kind"] == "Deployment":
            template = d["spec"]["template"]["metadata"]["labels"]
            assert d["spec"]["selector"]["matchLabels"].items() <= template.items()
            assert {"app.kubernetes.io/part-of", "app.kubernetes.io/component"} <= set(template)
    for service in (d for d in _objects() if d["kind"] == "Service"):
        name = service["metadata"]["name"]
        selected = [w for w, pod in pods.items()
                    if service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()]
        assert selected == [name], (name, selected)
        ports = {p["name"] for c in pods[name]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name


def test_the_server_has_two_replicas_probed_on_health_and_every_setting_it_needs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import inspect

    from assethub.server import ServerSettings

    server = _one("Deployment", "assethub")
    assert server["spec"]["replicas"] >= 2
    [container] = server["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/api/v1/health"
    assert _one("PodDisruptionBudget", "assethub")["spec"]["minAvailable"] == 1
    env = _resolved_env(container)
    # what from_env reads with no default (os.environ["..."]) or refuses to start without
    source = inspect.getsource(ServerSettings.from_env)
    required = set(re.findall(r'os\.environ\["(\w+)"\]', source))
    required |= set(re.findall(r'"(ASSETHUB_\w+)"', source.split("if not os.environ.get(k)")[0]))
    assert {"ASSETHUB_LAKEFS_ENDPOINT", "ASSETHUB_LAKEFS_ACCESS_KEY_ID",
            "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY"} <= required
    assert required <= set(env), required - set(env)
    # and the server, started with exactly this environment, is configured for the cluster
    for name in [k for k in os.environ if k.startswith("ASSETHUB_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("/var/lib/assethub", str(tmp_path)))
    settings = ServerSettings.from_env()
    assert settings.catalog_url.startswith("postgresql+psycopg://"), "the catalog is PostgreSQL's"
    assert settings.host == "0.0.0.0" and settings.port == 8780
    assert settings.hook_url == "http://assethub.assethub.svc:8780" and settings.hook_secret
    assert settings.lakefs_endpoint == "http://lakefs.assethub.svc:8000"
    assert env["ASSETHUB_PREFECT_API_URL"] == "http://prefect-server.assethub.svc:4200/api"
    assert env["ASSETHUB_STORAGE_NAMESPACE"].startswith("s3://"), "repositories on the S3 blockstore"
    assert env["ASSETHUB_MLFLOW_UI_URL"].startswith("https://")


def _resolved_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the pod sees it: references read from the ConfigMap and
    the Secret templates."""
    configs = {d["metadata"]["name"]: d["data"] for d in _objects() if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d["stringData"] for d in _objects() if d["kind"] == "Secret"}
    out = {}
    for var in container["env"]:
        ref = var.get("valueFrom", {})
        if "value" in var:
            out[var["name"]] = var["value"]
        elif "configMapKeyRef" in ref:
            out[var["name"]] = configs[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
        else:
            out[var["name"]] = secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]]
    return out


def test_lakefs_prefect_and_mlflow_run_on_postgresql_and_s3() -> None:
    from infra.lakefs import LAKEFS_VERSION

    lakefs = _one("Deployment", "lakefs")["spec"]["template"]["spec"]["containers"][0]
    assert lakefs["image"] == f"treeverse/lakefs:{LAKEFS_VERSION}"
    config = yaml.safe_load(_one("ConfigMap", "lakefs-config")["data"]["config.yaml"])
    assert config["database"]["type"] == "postgres" and config["blockstore"]["type"] == "s3"
    assert config["actions"]["env"]["prefix"] == "LAKEFSACTION_ASSETHUB_"
    lake_env = _resolved_env(lakefs)
    assert lake_env["LAKEFS_DATABASE_POSTGRES_CONNECTION_STRING"].startswith("postgres://")
    from assethub.triggers import HOOK_SECRET_ENV

    assert HOOK_SECRET_ENV in lake_env  # the hook secret its actions present to the server
    # the admin lakeFS sets up is the key the server uses
    server = _one("Deployment", "assethub")["spec"]["template"]["spec"]["containers"][0]
    refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in server["env"] + lakefs["env"]
            if "secretKeyRef" in v.get("valueFrom", {})}
    assert refs["ASSETHUB_LAKEFS_ACCESS_KEY_ID"] == refs["LAKEFS_INSTALLATION_ACCESS_KEY_ID"]
    assert refs["ASSETHUB_LAKEFS_SECRET_ACCESS_KEY"] == refs["LAKEFS_INSTALLATION_SECRET_ACCESS_KEY"]
    assert refs["ASSETHUB_HOOK_SECRET"] == refs[HOOK_SECRET_ENV]
    prefect = _one("Deployment", "prefect-server")["spec"]["template"]["spec"]["containers"][0]
    assert _resolved_env(prefect)["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    mlflow = _one("Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    ml_env = _resolved_env(mlflow)
    assert ml_env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    assert ml_env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert not any("://" in arg for arg in mlflow["command"]), "no database URL on the command line"


def test_the_gpu_worker_may_do_exactly_what_it_needs_in_the_namespace() -> None:
    from deployments import GPU_POOL, gpu_job_template

    worker = _one("Deployment", "prefect-worker")["spec"]["template"]["spec"]
    [container] = worker["containers"]
    command = container["command"]
    assert command[:3] == ["prefect", "worker", "start"]
    assert command[command.index("--pool") + 1] == GPU_POOL
    assert command[command.index("--type") + 1] == "kubernetes"
    assert worker["serviceAccountName"] == "prefect-worker"
    assert "ASSETHUB_TOKEN" not in {v["name"] for v in container["env"]}, "the jobs read theirs from a Secret"
    assert _resolved_env(container)["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"] == "assethub"
    role = _one("Role", "prefect-worker")
    granted = {(group, resource): set(rule["verbs"]) for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
                       ("", "pods"): {"get", "list", "watch"}, ("", "pods/log"): {"get"},
                       ("", "events"): {"get", "list", "watch", "create"}}
    assert not [d for d in _objects() if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    binding = _one("RoleBinding", "prefect-worker")
    assert binding["roleRef"]["name"] == "prefect-worker"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prefect-worker", "namespace": "assethub"}]
    # the jobs' service account and token Secret are the template's defaults
    variables = gpu_job_template()["variables"]["properties"]
    jobs_account = _one("ServiceAccount", variables["service_account_name"]["default"])
    assert jobs_account["automountServiceAccountToken"] is False
    assert "token" in _one("Secret", variables["token_secret_name"]["default"])["stringData"]
    assert variables["token_secret_key"]["default"] == "token"


# --- the images ---------------------------------------------------------------------------------

def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, its arguments) of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _copied_sources(instructions: list[tuple[str, str]]) -> list[str]:
    sources = []
    for word, rest in instructions:
        if word == "COPY" and not rest.startswith("--from"):
            *src, _dest = shlex.split(rest)
            sources += src
    return sources


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.job"])
def test_each_image_copies_what_exists_and_installs_the_locked_environment(name: str) -> None:
    from deployments import IMAGE_WORKDIR

    instructions = _instructions(DOCKER / name)
    sources = _copied_sources(instructions)
    assert {"pyproject.toml", "uv.lock", "assethub", "tasks", "flows", "deployments",
            "examples"} <= set(sources)
    for src in sources:
        assert (ROOT / src).exists(), f"{name} copies {src}, which the repository does not have"
    # the .dockerignore next to it lets every copied path through
    ignore = (DOCKER / f"{name}.dockerignore").read_text().split()
    assert all(f"!{s}" in ignore or f"!{s}/" in ignore for s in sources), sources
    assert [rest for word, rest in instructions if word == "WORKDIR"] == [IMAGE_WORKDIR]
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "not root by default"
    assert instructions[0][0] == "FROM" and "python:3.11" in instructions[0][1]


def test_the_platform_image_has_the_kubernetes_worker_and_starts_the_server() -> None:
    import tomllib

    instructions = _instructions(DOCKER / "Dockerfile")
    runs = [rest for word, rest in instructions if word == "RUN" and "uv sync" in rest]
    assert runs and all("--group kubernetes" in r for r in runs)
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    assert any(dep.startswith("prefect-kubernetes") for dep in groups["kubernetes"])
    assert {"include-group": "kubernetes"} in groups["dev"]
    assert [rest for word, rest in instructions if word == "CMD"] == ['["python", "-m", "assethub.server"]']
    for workload in ("assethub", "prefect-server", "prefect-worker", "mlflow"):
        [c] = _one("Deployment", workload)["spec"]["template"]["spec"]["containers"]
        assert c["image"].startswith("assethub/platform:"), workload


def test_the_job_image_runs_what_the_gpu_pools_template_runs() -> None:
    import json

    from deployments import IMAGE_WORKDIR, JOB_COMMAND, JOB_HOME, gpu_job_template

    instructions = _instructions(DOCKER / "Dockerfile.job")
    [cmd] = [rest for word, rest in instructions if word == "CMD"]
    assert json.loads(cmd) == JOB_COMMAND.split()
    assert not [w for w, _ in instructions if w == "ENTRYPOINT"], "the template's args are the whole command"
    env = " ".join(rest for word, rest in instructions if word == "ENV")
    assert f"PATH={IMAGE_WORKDIR}/.venv/bin:" in env, "prefect is the project environment's"
    assert f"ASSETHUB_HOME={JOB_HOME}" in env
    apt = " ".join(rest for word, rest in instructions if word == "RUN" and "apt-get install" in rest)
    for package in ("git", "bubblewrap", "util-linux"):  # code checkouts; the sandbox (bwrap, setpriv)
        assert f" {package} " in f" {apt} ", package
    template = gpu_job_template()
    assert template["variables"]["properties"]["command"]["default"] == JOB_COMMAND
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert container["workingDir"] == IMAGE_WORKDIR
    assert template["variables"]["properties"]["image"]["default"] == "assethub/jobs:latest"
    assert "assethub/jobs:latest" in (DOCKER / "Dockerfile.job").read_text()
