"""Serving without MLflow and without processes: names, secrets kept from replicas, the model's
reasons, Kubernetes manifests against the Kubernetes schemas, a taken port. (The supervisor, with
its stand-in replica processes, is tested in tests/integration/test_supervisor.py.)"""

from __future__ import annotations

import json

import pytest

from assethub.errors import InvalidReferenceError, PortInUseError
from assethub.serving import validate_replicas, validate_service_name
from assethub.serving.k8s import KubernetesSettings, model_uri, render, to_yaml
from assethub.serving.local import bind, child_env
from assethub.serving.manager import model_reason


@pytest.mark.parametrize("name", ["digits", "a", "digits-cnn-2", "x" * 40])
def test_good_service_names(name: str) -> None:
    assert validate_service_name(name) == name


@pytest.mark.parametrize("name", ["", "Digits", "-a", "a-", "1abc", "a_b", "a.b", "x" * 41, "a b", "é"])
def test_bad_service_names_say_what_is_allowed(name: str) -> None:
    with pytest.raises(InvalidReferenceError, match="lowercase letters"):
        validate_service_name(name)


@pytest.mark.parametrize("n", [-1, 17, True, 1.5])
def test_bad_replica_counts(n: object) -> None:
    with pytest.raises(InvalidReferenceError, match="replicas"):
        validate_replicas(n)  # type: ignore[arg-type]


def test_replicas_never_see_secrets() -> None:
    env = child_env({"PATH": "/bin", "HOME": "/root", "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": "s",
                     "ASSETHUB_LAKEFS_ACCESS_KEY_ID": "k", "ASSETHUB_CATALOG_URL": "postgresql://u:p@h/db",
                     "AWS_SECRET_ACCESS_KEY": "s", "MLFLOW_TRACKING_TOKEN": "t", "PGPASSWORD": "p",
                     "ASSETHUB_TOKEN": "ah_x", "OMP_NUM_THREADS": "1", "PREFECT_API_AUTH_STRING": "a:b",
                     "ASSETHUB_SANDBOX": "off", "ASSETHUB_SANDBOX_UID": "2000"})
    # the sandbox's settings reach the supervisor, which starts the replicas
    assert env == {"PATH": "/bin", "HOME": "/root", "OMP_NUM_THREADS": "1", "ASSETHUB_SANDBOX": "off",
                   "ASSETHUB_SANDBOX_UID": "2000"}


def test_model_reason_drops_the_echoed_input_and_the_stack_trace() -> None:
    data = "[[" + "0.1 " * 5000 + "]]"
    body = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "stack_trace": "Traceback ...",
                       "message": f"Failed to predict data '{data}'. \nError: Failed to enforce schema "
                                  f"of data '{data}' with schema '[Tensor('float32', (-1, 4))]'. Error: "
                                  "Shape of input (1, 2) does not match expected shape (-1, 4)."}).encode()
    reason = model_reason(body)
    assert "Shape of input (1, 2) does not match expected shape (-1, 4)" in reason
    assert "0.1 0.1" not in reason and "Traceback" not in reason and len(reason) < 400
    assert model_reason(b"plain text\n") == "plain text"


def test_kubernetes_manifests_are_valid_and_hold_no_credentials() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    commit = "c0ffee" * 10 + "abcd"
    settings = KubernetesSettings.from_env({"ASSETHUB_K8S_NAMESPACE": "models",
                                            "ASSETHUB_K8S_SECRET": "lakefs-gw"})
    docs = render("digits", model_ref="alice/model/digits/cnn:main", commit=commit, repository="ah-digits",
                  replicas=2, training_run="abc123", settings=settings)
    for doc in docs:
        kubernetes_validate.validate(doc, latest_version(), strict=True)
    deployment, service = docs
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert model_uri("ah-digits", commit) == f"s3://ah-digits/{commit}/model"
    assert container["command"][:4] == ["mlflow", "models", "serve", "--model-uri"]
    assert f"s3://ah-digits/{commit}/model" in container["command"]
    assert "local" in container["command"]  # no conda / virtualenv built in the pod
    for var in container["env"]:
        if var["name"].startswith("AWS_") and var["name"] != "AWS_DEFAULT_REGION":
            assert "value" not in var and var["valueFrom"]["secretKeyRef"]["name"] == "lakefs-gw"
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "models"
    assert deployment["metadata"]["annotations"]["assethub.io/model-commit"] == commit
    assert all(len(v) <= 63 for v in deployment["metadata"]["labels"].values())
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    text = to_yaml(docs)
    assert "&id" not in text and text.count("kind:") == 2


def test_kubernetes_schema_catches_a_broken_manifest() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    deployment = render("digits", model_ref="a/model/b/c:main", commit="a" * 64, repository="r",
                        replicas=1)[0]
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, latest_version(), strict=True)


def test_a_taken_port_is_reported() -> None:
    first = bind("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use") as e:
            bind("127.0.0.1", port, name="x")
        assert e.value.port == port
    finally:
        first.close()
