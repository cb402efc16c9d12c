"""The console's job pages' pure parts: the params field, the version comparison's rows, when the
live part of a run page stops asking."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from assethub import errors
from assethub.console.jobs import _terminal, compare_rows, params_text, parse_params
from assethub.wire import RunView


def test_params_are_key_value_lines_as_the_cli_takes_them_or_json() -> None:
    assert parse_params("epochs=3\n\n# a comment\nlr = 1e-3\nname=cnn\nfast=true") == {
        "epochs": 3, "lr": 0.001, "name": "cnn", "fast": True}
    assert parse_params('{"layers": [1, 2], "epochs": 1}') == {"layers": [1, 2], "epochs": 1}
    assert parse_params("  ") == {}
    assert parse_params("x=nan") == {"x": "nan"}  # no NaN goes to a job


@pytest.mark.parametrize(("text", "says"), [
    ("epochs=1\nnot a pair", "params line 2: write key=value"),
    ("=3", "params line 1"),
    ('{"epochs": }', "not valid JSON"),
    ("[1, 2]", "params line 1"),
])
def test_a_bad_params_field_says_where(text: str, says: str) -> None:
    with pytest.raises(errors.InvalidReferenceError, match=says) as raised:
        parse_params(text)
    assert raised.value.part == "params"


@pytest.mark.parametrize("params", [
    {"epochs": 1, "lr": 0.1, "name": "x", "fast": False},
    {"<img src=x onerror=alert(1)>": "<script>alert(2)</script>", "a=b": "c"},
    {"n": "1"}, {"nested": {"a": [1]}}, {"text": "two\nlines"}, {},
])
def test_params_shown_in_the_form_read_back_the_same(params: dict[str, object]) -> None:
    assert parse_params(params_text(params)) == params


def test_compare_rows_mark_differences_in_section_order() -> None:
    a = {"run/job": ("train", ""), "params/epochs": ("1", ""), "data/dataset": ("d:v1", "/a/d")}
    b = {"params/epochs": ("2", ""), "data/dataset": ("d:v1", "/a/d"), "params/lr": ("0.1", "")}
    rows = compare_rows(a, b)
    assert [(r.section, r.name, r.differs) for r in rows] == [
        ("params", "epochs", True), ("params", "lr", True), ("data", "dataset", False),
        ("run", "job", True)]
    assert rows[2].href_a == rows[2].href_b == "/a/d"


def _run(state: str, finished: datetime | None, flow_run: str = "f") -> RunView:
    base = RunView("r", "train", "running", "o/model/f/n", "b", "", "", "", "", "", "", "", "", "", {}, {},
                   "", "", "", "", "o", datetime.now(UTC), None)
    return replace(base, state=state, finished_at=finished, prefect_flow_run_id=flow_run)


def test_the_live_part_stops_once_the_run_and_its_flow_run_ended_and_the_log_had_time() -> None:
    now = datetime.now(UTC)
    long_ago = now - timedelta(minutes=5)
    assert not _terminal(_run("running", None), None)
    assert not _terminal(_run("completed", long_ago), False)  # the flow run is still going
    assert not _terminal(_run("completed", now), True)  # its last log lines may still come
    assert _terminal(_run("completed", long_ago), True)
    assert _terminal(_run("failed", now, flow_run=""), None)  # no flow run: nothing to wait for


def test_lineage_nodes_link_each_step_and_the_services_of_the_version() -> None:
    from assethub.console.jobs import lineage_nodes
    from assethub.lineage import Lineage
    from assethub.wire import EvaluationView, LineageView

    d, m, sha = "d" * 64, "m" * 64, "c" * 40
    lin = Lineage(job="train", run_id="r" * 32, dataset=f"o/dataset/f/digits:{d}", dataset_commit=d,
                  code_url="https://git.example.org/x.git", code_sha=sha, command="python train.py")
    ev = EvaluationView("e" * 32, "o/model/f/net", m, f"o/dataset/f/digits:{d}", d, {"accuracy": 0.9},
                        "v" * 32, "o", datetime.now(UTC))
    view = LineageView("o/model/f/net:main", "h" * 64, m, lin, (ev,), None)
    nodes, edges, table = lineage_nodes(view, [("digits-api", "running")])
    links = {n.kind + ":" + n.id: n.href for n in nodes}
    assert links == {
        "dataset:dataset": f"/a/o/dataset/f/digits?ref={d}",
        "code:code": "https://git.example.org/x.git",
        "run:run": f"/runs/{'r' * 32}",
        "model:model": f"/a/o/model/f/net/files?ref={m}",
        f"evaluation:eval-{'e' * 32}": f"/runs/{'v' * 32}",
        "service:svc-digits-api": "/services/digits-api",
    }
    assert set(edges) == {("dataset", "run"), ("code", "run"), ("run", "model"),
                          ("model", f"eval-{'e' * 32}"), ("model", "svc-digits-api")}
    assert [row[0] for row in table] == ["dataset commit", "code sha", "run", "model commit", "evaluation",
                                         "service"]
    # a code URL that is not http(s) is no link
    local = LineageView(view.ref, view.commit, m, replace(lin, code_url="/srv/code"), (), None)
    assert {n.id: n.href for n in lineage_nodes(local, [])[0]}["code"] == ""


def test_the_train_form_may_name_an_algorithm_or_leave_code_and_data_to_the_models_settings() -> None:
    from types import SimpleNamespace

    from assethub.console.jobs import _job_parameters
    from assethub.refs import AssetPath

    asset = SimpleNamespace(path=AssetPath.parse("alice/model/cls/net"))
    blank = {"dataset": "", "repo": "", "algorithm": "", "revision": "", "subpath": "", "command": "",
             "params": "", "branch": ""}
    assert _job_parameters(asset, "train", blank) == {"model": "alice/model/cls/net", "params": {}}  # type: ignore[arg-type]
    named = {**blank, "algorithm": "image-classification/digits-cnn@2", "params": "epochs=1"}
    assert _job_parameters(asset, "train", named) == {  # type: ignore[arg-type]
        "model": "alice/model/cls/net", "algorithm": "image-classification/digits-cnn@2",
        "params": {"epochs": 1}}
