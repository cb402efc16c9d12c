"""What a model version holds (assethub.model_format): kept in the commit's metadata, read back,
shown by the lineage view and the model card; old commits without the key hold an MLflow model."""

from __future__ import annotations

from pathlib import Path

from assethub.lineage import Lineage, model_card
from assethub.wire import LineageView
from tasks.results import written_files


def _view(lineage: Lineage | None) -> LineageView:
    return LineageView("a/model/f/m:main", "c1", "c1", lineage, (), None)


def test_the_format_round_trips_through_commit_metadata_and_old_commits_are_servable() -> None:
    files = Lineage(job="train", run_id="r", code_revision="master", model_format="files")
    meta = files.to_metadata()
    assert meta["assethub.model_format"] == "files"
    back = Lineage.from_metadata(meta)
    assert back == files and back is not None and not back.servable
    old = {k: v for k, v in meta.items() if k != "assethub.model_format"}  # made before the key
    before = Lineage.from_metadata(old)
    assert before is not None and before.model_format == "" and before.servable
    assert (_view(before).model_format, _view(before).servable) == ("mlflow", True)
    assert (_view(files).model_format, _view(files).servable) == ("files", False)
    logged = _view(Lineage(job="continue_train", model_format="mlflow-logged"))
    assert (logged.model_format, logged.servable) == ("mlflow-logged", True)
    assert (_view(None).model_format, _view(None).servable) == ("", None)  # no job made it: unknown


def test_the_model_card_says_which_case_and_how_to_make_files_servable() -> None:
    card = model_card("a/model/f/m", Lineage(job="train", code_revision="master", model_format="files"), "u")
    assert "not servable" in card and "mlflow.sklearn.save_model" in card and "log_model" in card
    assert "`master`" in card
    logged = model_card("a/model/f/m", Lineage(job="train", model_format="mlflow-logged"), "u")
    assert "logged it to its MLflow run" in logged and "not servable" not in logged
    plain = model_card("a/model/f/m", Lineage(job="train", model_format="mlflow"), "u")
    assert "the training code wrote it" in plain and "assethub serve a/model/f/m:<ref>" in plain


def test_what_asset_hub_adds_is_not_what_the_job_wrote(tmp_path: Path) -> None:
    (tmp_path / "eval").mkdir()
    for name in ("README.md", "metrics.json", "eval/x.json"):
        (tmp_path / name).write_text("{}")
    assert written_files(tmp_path) == []
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "README.md").write_text("mine")
    (tmp_path / "model.joblib").write_bytes(b"x")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written_files(tmp_path)) == [
        "model.joblib", "sub/README.md"]
