"""The stack's profile and the settings that point the distributed profile's pieces elsewhere
(infra/profiles.py): what each variable means, and a clear error for one that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import profiles
from infra.profiles import DISTRIBUTED, EMBEDDED, SettingsError, from_env

KEYS = {"ASSETHUB_S3_ENDPOINT": "https://s3.eu-west-1.amazonaws.com", "ASSETHUB_S3_ACCESS_KEY_ID": "AK",
        "ASSETHUB_S3_SECRET_ACCESS_KEY": "SK"}


def test_the_embedded_profile_is_the_default_and_reads_no_external_setting() -> None:
    env = {**KEYS, "PREFECT_API_URL": "http://prefect:4200/api", "MLFLOW_TRACKING_URI": "http://m:5000"}
    settings = from_env(env)
    assert settings == profiles.Settings(EMBEDDED)
    assert settings.external() == {}


def test_distributed_alone_starts_every_piece_here() -> None:
    s = from_env({}, DISTRIBUTED)
    assert s.profile == DISTRIBUTED and s.external() == {}
    assert s.storage_namespace == "s3://assethub-data/repos"
    assert s.mlflow_artifacts == "s3://assethub-mlflow/artifacts" and s.mlflow_bucket == "assethub-mlflow"


def test_the_profile_comes_from_the_option_then_the_variable_then_the_home() -> None:
    assert from_env({"ASSETHUB_PROFILE": DISTRIBUTED}).profile == DISTRIBUTED
    assert from_env({}, saved=DISTRIBUTED).profile == DISTRIBUTED
    assert from_env({"ASSETHUB_PROFILE": EMBEDDED}, DISTRIBUTED).profile == DISTRIBUTED
    with pytest.raises(SettingsError, match="unknown profile 'cloud'"):
        from_env({"ASSETHUB_PROFILE": "cloud"})


def test_a_home_keeps_its_profile() -> None:
    with pytest.raises(SettingsError, match="set up with the embedded profile, not distributed"):
        from_env({}, DISTRIBUTED, saved=EMBEDDED)


def test_external_pieces_are_named_without_their_secrets() -> None:
    env = {**KEYS, "ASSETHUB_S3_BUCKET": "team-data", "ASSETHUB_S3_REGION": "eu-west-1",
           "ASSETHUB_LAKEFS_ENDPOINT": "https://lakefs.example.org/", "ASSETHUB_LAKEFS_ACCESS_KEY_ID": "LK",
           "ASSETHUB_LAKEFS_SECRET_ACCESS_KEY": "LS",
           "ASSETHUB_POSTGRES_URL": "postgres://hub:pw-secret@db.example.org:6432",
           "PREFECT_API_URL": "http://prefect:4200/api", "MLFLOW_TRACKING_URI": "http://mlflow:5000",
           "ASSETHUB_MLFLOW_ARTIFACTS": "s3://team-mlflow/runs/"}
    s = from_env(env, DISTRIBUTED)
    assert s.s3_region == "eu-west-1" and s.storage_namespace == "s3://team-data/repos"
    assert s.lakefs_endpoint == "https://lakefs.example.org"
    assert s.postgres_url == "postgresql://hub:pw-secret@db.example.org:6432"
    assert s.mlflow_artifacts == "s3://team-mlflow/runs" and s.mlflow_bucket == "team-mlflow"
    assert s.external() == {"s3": "https://s3.eu-west-1.amazonaws.com", "lakefs": "https://lakefs.example.org",
                            "postgres": "db.example.org:6432", "prefect-server": "http://prefect:4200/api",
                            "mlflow": "http://mlflow:5000"}
    shown = repr(s) + str(s.external())
    assert "SK" not in shown and "LS" not in shown and "pw-secret" not in shown


@pytest.mark.parametrize(("env", "message"), [
    ({"ASSETHUB_S3_ENDPOINT": "http://s3:9000"},
     "ASSETHUB_S3_ENDPOINT set without ASSETHUB_S3_ACCESS_KEY_ID, ASSETHUB_S3_SECRET_ACCESS_KEY"),
    ({"ASSETHUB_LAKEFS_ENDPOINT": "http://l:8000", "ASSETHUB_LAKEFS_ACCESS_KEY_ID": "k"},
     "without ASSETHUB_LAKEFS_SECRET_ACCESS_KEY"),
    ({**KEYS, "ASSETHUB_S3_ENDPOINT": "s3.example.org"}, "ASSETHUB_S3_ENDPOINT must be an http"),
    ({"ASSETHUB_POSTGRES_URL": "mysql://u:p@h/db"}, "must be a postgresql:// URL"),
    ({"ASSETHUB_CATALOG_URL": "sqlite:///catalog.db"}, "ASSETHUB_CATALOG_URL must be a postgresql"),
    ({"ASSETHUB_S3_BUCKET": "Team_Data"}, "ASSETHUB_S3_BUCKET must be an S3 bucket name"),
    ({"ASSETHUB_MLFLOW_ARTIFACTS": "/var/mlflow"}, "ASSETHUB_MLFLOW_ARTIFACTS must be s3://BUCKET/PREFIX"),
    ({"PREFECT_API_URL": "prefect:4200"}, "PREFECT_API_URL must be an http"),
    ({"MLFLOW_TRACKING_URI": "file:///mlruns"}, "MLFLOW_TRACKING_URI must be an http"),
])
def test_a_setting_that_cannot_work_is_refused_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        from_env(env, DISTRIBUTED)


def test_the_home_remembers_the_profile_and_the_external_pieces(tmp_path: Path) -> None:
    assert profiles.saved_profile(tmp_path) is None
    profiles.remember(tmp_path, from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, DISTRIBUTED))
    assert profiles.saved_profile(tmp_path) == DISTRIBUTED
    assert profiles.saved(tmp_path)["external"] == {"mlflow": "http://mlflow:5000"}
