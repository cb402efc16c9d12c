"""Console pages: a model's evaluations, two versions side by side, a version's lineage, the job
forms (train, continue-train, evaluate) and the runs.

- ``/a/<model>/evaluations``: evaluations per version, a table and a line chart per metric
- ``/a/<model>/versions?a=REF&b=REF[&diff=1]``: two versions compared, differences marked
- ``/a/<model>/lineage?ref=REF``: dataset commit -> code -> run -> model commit -> evaluations ->
  services, as a graph of links and as a table
- ``/a/<model>/train`` (``run`` role and up): the forms; ``POST /a/<model>/train``,
  ``/continue-train``, ``/evaluate`` start the job as the signed-in person through the
  server's job launcher (:func:`assethub.launcher.start_job`) and redirect to the run
- ``/runs`` (yours; an admin's: all), ``/runs/<id>`` and its live part ``/runs/<id>/live``
  (polled by console.js while the run is going)

Everything goes through the hub's permission layer with the person looking: a hidden model or
a run of one answers exactly like a missing one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import select

from assethub import errors
from assethub.catalog import Service
from assethub.console import render as draw
from assethub.console._web import asset_url, field, form_of, fragment, redirect, render, viewer
from assethub.hub import RUN_KINDS, RUN_STATES, Hub, Principal
from assethub.hub._rows import asset_path
from assethub.launcher import LauncherUnavailable, LogLine, start_job
from assethub.refs import AssetPath, AssetRef
from assethub.wire import AssetView, EvaluationView, LineageView, RunView

#: runs per page of /runs, and the most a "more" link asks for
RUNS_PAGE, RUNS_MAX = 50, 1000
#: evaluations shown per page of the evaluations tab
EVALS_PAGE = 100
#: the log lines the live part reads, and shows (the newest)
LOG_READ, LOG_SHOWN = 2000, 400
#: after a run ends, how long its page keeps asking for log lines (the orchestrator ships
#: them in batches, some after the flow run's end)
LOG_GRACE_SECONDS = 30.0
ENDED = ("completed", "failed", "crashed")
#: the roles that may start jobs on a model (evaluate needs run; training needs edit)
STARTERS = ("run", "edit", "owner")
_FORMS = ("train", "continue-train", "evaluate")
# the form fields each job takes (besides the version it acts on)
_JOB_FIELDS = {
    "train": ("dataset", "repo", "algorithm", "revision", "subpath", "command", "params", "branch", "pool"),
    "continue-train": ("base", "dataset", "repo", "algorithm", "revision", "subpath", "command", "params",
                       "branch", "pool"),
    "evaluate": ("ref", "dataset", "repo", "algorithm", "revision", "subpath", "command", "params"),
}


# -- helpers -------------------------------------------------------------------------------------
def _model(hub: Hub, who: Principal, owner: str, kind: str, folder: str, name: str) -> AssetView:
    """The model asset of the URL, as the person may see it (hidden = missing)."""
    try:
        path = AssetPath(owner, kind, folder, name)  # type: ignore[arg-type]
    except errors.InvalidReferenceError:
        raise errors.NotFoundError("asset", f"{owner}/{kind}/{folder}/{name}"[:200]) from None
    asset = hub.get_asset(who, path)
    if asset.path.kind.value != "model":
        raise errors.NotFoundError("page", f"{path}: evaluations, lineage and training are a model's")
    return asset


def _ref(asset: AssetView, ref: str, name: str = "ref") -> AssetRef:
    try:
        return asset.path.at(ref or "main")
    except errors.InvalidReferenceError as e:
        raise errors.InvalidReferenceError(str(e), part=name, value=ref[:100]) from None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def _version_names(hub: Hub, who: Principal, asset: AssetPath) -> dict[str, list[str]]:
    """commit id -> the branches and tags at it (tags first)."""
    names: dict[str, list[str]] = {}
    for t in hub.list_tags(who, asset):
        names.setdefault(t.commit_id, []).append(t.name)
    for b in hub.list_branches(who, asset):
        names.setdefault(b.commit_id, []).append(b.name)
    return names


def _version_label(commit: str, names: Mapping[str, Sequence[str]]) -> str:
    at = names.get(commit)
    return f"{at[0]} ({commit[:8]})" if at else commit[:12]


def mlflow_ui() -> str:
    """The MLflow UI's base URL: ASSETHUB_MLFLOW_UI_URL, else the server's MLFLOW_TRACKING_URI
    when that is http(s); "" when neither."""
    ui = os.environ.get("ASSETHUB_MLFLOW_UI_URL", "").strip()
    if not ui:
        tracking = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        ui = tracking if tracking.startswith(("http://", "https://")) else ""
    return ui.rstrip("/")


def mlflow_run_url(run_id: str) -> str:
    base = mlflow_ui()
    return f"{base}/#/runs/{run_id}" if base and run_id else ""


def _http(url: str) -> str:
    """``url`` if it is an http(s) address (a link may be made of it), else ""."""
    return url if url.startswith(("http://", "https://")) else ""


def _services_of(hub: Hub, model: AssetPath, commits: Iterable[str]) -> list[tuple[str, str]]:
    """(name, state) of the services serving ``model`` at one of ``commits``. Call only once the
    person's view on the model is checked (the services API shows a service to whoever may
    view its model)."""
    wanted = [c for c in set(commits) if c]
    if not wanted:
        return []
    out = []
    with hub.catalog.session() as s:
        for row in s.scalars(select(Service).where(Service.model_commit.in_(wanted))
                             .order_by(Service.name)):
            if row.model is not None and asset_path(row.model, "") == str(model):
                out.append((row.name, row.state))
    return out


# -- job form values -----------------------------------------------------------------------------
def parse_params(text: str) -> dict[str, Any]:
    """The params field: a JSON object, or ``key=value`` lines (as the CLI's ``--param``: an
    int, a float, true/false, or else the text as given); blank lines and ``#`` comments skipped."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise errors.InvalidReferenceError(f"params: not valid JSON ({e.msg} at line {e.lineno})",
                                               part="params", value=text[:100]) from None
        if not isinstance(value, dict):
            raise errors.InvalidReferenceError("params: JSON must be an object of names to values",
                                               part="params", value=text[:100])
        return value
    out: dict[str, Any] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise errors.InvalidReferenceError(f"params line {n}: write key=value, not {line[:60]!r}",
                                               part="params", value=line[:100])
        out[key] = _param_value(raw)
    return out


def _param_value(raw: str) -> Any:
    for convert in (int, float):
        try:
            value = convert(raw)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return raw
        return value
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def params_text(params: Mapping[str, Any]) -> str:
    """The params field's text for ``params`` (key=value lines, JSON for nested values)."""
    lines = []
    for k, v in params.items():
        plain = k.strip() == k and "=" not in k and "\n" not in k and not k.startswith("#") and not (
            isinstance(v, str) and ("\n" in v or v.strip() != v or _param_value(v) != v))
        if isinstance(v, dict | list | None) or not plain:
            return json.dumps(dict(params), indent=2, sort_keys=True)
        lines.append(f"{k}={json.dumps(v) if isinstance(v, bool) else v}")
    return "\n".join(lines)


def _defaults(asset: AssetView, ref: str, run: RunView | None) -> dict[str, str]:
    """Prefilled form values: the version at hand, and a previous run's inputs when given."""
    values = {"ref": ref or "main", "base": ref or "main", "revision": "", "pool": "local",
              "dataset": "", "repo": "", "algorithm": "", "subpath": "", "command": "", "params": "",
              "branch": ""}
    if run is not None:
        values.update(dataset=run.dataset_ref, repo="" if run.algorithm else run.code_url,
                      algorithm=run.algorithm and f"{run.algorithm}@{run.algorithm_version}",
                      revision="" if run.algorithm else run.code_revision,
                      subpath="" if run.algorithm else run.code_subpath,
                      command="" if run.algorithm else run.command, params=params_text(run.params))
    return values


def _job_parameters(asset: AssetView, job: str, values: Mapping[str, str]) -> dict[str, Any]:
    """start_job's parameters from the form's values (the model is the page's)."""
    p: dict[str, Any] = {k: values[k] for k in ("dataset", "repo", "algorithm", "revision", "subpath",
                                                "command") if values.get(k)}
    p["params"] = parse_params(values.get("params", ""))
    if job == "train":
        p["model"] = str(asset.path)
        if values.get("branch"):
            p["branch"] = values["branch"]
    elif job == "continue-train":
        p["base"] = str(_ref(asset, values.get("base", ""), "base"))
        if values.get("branch"):
            p["branch"] = values["branch"]
    else:
        p["model"] = str(_ref(asset, values.get("ref", ""), "ref"))
    return p


def _field_of(job: str, e: errors.AssetHubError, values: Mapping[str, str]) -> str:
    """Which of the form's fields an error is about ("" if none in particular)."""
    fields = _JOB_FIELDS[job]
    part = getattr(e, "part", "")
    aliases = {"model": "ref" if job == "evaluate" else "", "code_url": "repo", "url": "repo",
               "revision": "revision", "metric": "params", "parameter": "params"}
    part = aliases.get(part, part)
    if part in fields:
        return str(part)
    text = str(e)
    for name in ("dataset", "repo", "algorithm", "base", "ref", "branch", "revision", "subpath"):
        value = values.get(name, "")
        if name in fields and value and value in text:
            return name
    return ""


# -- evaluations, versions, lineage --------------------------------------------------------------
@dataclass(frozen=True)
class _EvalRow:
    e: EvaluationView
    version: str


def _evaluation_charts(rows: Sequence[_EvalRow]) -> list[Markup]:
    """One line chart per metric: x = versions (oldest first), one line per dataset."""
    metrics = sorted({k for r in rows for k in r.e.metrics})
    ordered = sorted(rows, key=lambda r: r.e.created_at)
    charts = []
    for metric in metrics[:12]:
        series: dict[str, list[tuple[str, float | None]]] = {}
        for r in ordered:
            if metric in r.e.metrics:
                key = f"{AssetRef.parse(r.e.dataset_ref).path.name}@{r.e.dataset_commit[:8]}" \
                    if ":" in r.e.dataset_ref else r.e.dataset_commit[:8]
                series.setdefault(key, []).append((r.version, float(r.e.metrics[metric])))
        charts.append(draw.line_chart(series, title=f"{metric} across versions"))
    return charts


@dataclass(frozen=True)
class _Row:
    section: str
    name: str
    a: str
    b: str
    href_a: str = ""
    href_b: str = ""

    @property
    def differs(self) -> bool:
        return self.a != self.b


def _side(hub: Hub, who: Principal, view: LineageView) -> dict[str, tuple[str, str]]:
    """name -> (text, link) of one version, for the comparison."""
    lin = view.lineage
    out: dict[str, tuple[str, str]] = {}
    path = AssetRef.parse(view.ref).path
    out["data/dataset"] = (lin.dataset if lin else "", _dataset_url(lin.dataset, lin.dataset_commit)
                           if lin and lin.dataset else "")
    out["data/dataset commit"] = ((lin.dataset_commit if lin else ""), "")
    out["code/repository"] = ((lin.code_url if lin else ""), _http(lin.code_url) if lin else "")
    out["code/revision"] = ((lin.code_revision if lin else ""), "")
    out["code/sha"] = ((lin.code_sha if lin else ""), "")
    out["code/subpath"] = ((lin.code_subpath if lin else ""), "")
    out["code/command"] = ((lin.command if lin else ""), "")
    if lin and lin.base_model:
        out["code/base model"] = (f"{lin.base_model} ({lin.base_model_commit[:12]})", "")
    for k, v in sorted((lin.params if lin else {}).items()):
        out[f"params/{k}"] = (_fmt(v), "")
    metrics = dict(lin.metrics) if lin else {}
    if view.evaluations:  # the newest evaluation's numbers over the job's own
        metrics.update(max(view.evaluations, key=lambda e: e.created_at).metrics)
    for k, v in sorted(metrics.items()):
        out[f"metrics/{k}"] = (_fmt(v), "")
    run_id = lin.run_id if lin else ""
    out["run/job"] = ((lin.job if lin else "none (not made by an Asset Hub job)"), "")
    out["run/run"] = (run_id, f"/runs/{run_id}" if run_id else "")
    mlflow = lin.mlflow_run_id if lin else ""
    out["run/MLflow run"] = (mlflow, mlflow_run_url(mlflow))
    commit = hub.get_commit(who, path.at(view.model_commit))
    out["created/model commit"] = (view.model_commit, asset_url(path, "files", ref=view.model_commit))
    out["created/created"] = (commit.created.astimezone(UTC).isoformat(timespec="seconds")
                              if commit.created else "", "")
    out["created/by"] = ((view.run.created_by if view.run else commit.committer), "")
    return out


_SECTIONS = ("params", "metrics", "data", "code", "run", "created")


def compare_rows(a: Mapping[str, tuple[str, str]], b: Mapping[str, tuple[str, str]]) -> list[_Row]:
    names = list(dict.fromkeys([*a, *b]))
    rows = [_Row(n.split("/", 1)[0], n.split("/", 1)[1], a.get(n, ("", ""))[0], b.get(n, ("", ""))[0],
                 a.get(n, ("", ""))[1], b.get(n, ("", ""))[1]) for n in names]
    return sorted(rows, key=lambda r: _SECTIONS.index(r.section))


def _dataset_url(dataset: str, commit: str) -> str:
    try:
        ref = AssetRef.parse(dataset)
    except errors.InvalidReferenceError:
        return ""
    return asset_url(ref.path, ref=commit or ref.ref)


def _dataset_label(dataset: str, commit: str) -> str:
    """``name:ref @ commit`` of a dataset version, short (no ref when it is the commit)."""
    name, _, ref = dataset.partition(":")
    name = name.rsplit("/", 1)[-1]
    if ref and ref != commit:
        name += f":{ref[:16]}"
    return f"{name} @ {commit[:8]}" if commit else name


def lineage_nodes(view: LineageView, services: Sequence[tuple[str, str]]
                  ) -> tuple[list[draw.Node], list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """The lineage graph's nodes and edges, and the same as table rows (step, what, link, detail)."""
    lin = view.lineage
    path = AssetRef.parse(view.ref).path
    nodes: list[draw.Node] = []
    edges: list[tuple[str, str]] = []
    table: list[tuple[str, str, str, str]] = []

    def add(node: draw.Node, step: str, into: Sequence[str] = ()) -> None:
        nodes.append(node)
        edges.extend((src, node.id) for src in into)
        table.append((step, node.label, node.href, node.detail))

    model = draw.Node("model", "model", f"model {view.model_commit[:12]}",
                      asset_url(path, "files", ref=view.model_commit),
                      f"{path} at commit {view.model_commit}")
    before: list[str] = []
    if lin is not None:
        if lin.dataset:
            add(draw.Node("dataset", "dataset", _dataset_label(lin.dataset, lin.dataset_commit),
                          _dataset_url(lin.dataset, lin.dataset_commit),
                          f"dataset {lin.dataset} at commit {lin.dataset_commit}"), "dataset commit")
        if lin.base_model:
            try:
                base_ref = AssetRef.parse(lin.base_model)
                base_href = asset_url(base_ref.path, "lineage", ref=lin.base_model_commit or base_ref.ref)
            except errors.InvalidReferenceError:
                base_href = ""
            add(draw.Node("base", "model", f"base {lin.base_model_commit[:12]}", base_href,
                          f"base model {lin.base_model} at commit {lin.base_model_commit}"), "base model")
        if lin.code_url or lin.code_sha:
            sub = f" /{lin.code_subpath}" if lin.code_subpath else ""
            add(draw.Node("code", "code", f"code {lin.code_sha[:10]}", _http(lin.code_url),
                          f"{lin.code_url} at {lin.code_sha}{sub}; command: {lin.command}"), "code sha")
        inputs = [n.id for n in nodes]
        if lin.run_id:
            run_detail = f"{lin.job} run {lin.run_id}"
            if lin.mlflow_run_id:
                run_detail += f"; MLflow run {lin.mlflow_run_id}"
            add(draw.Node("run", "run", f"{lin.job} run {lin.run_id[:8]}", f"/runs/{lin.run_id}", run_detail),
                "run", inputs)
            before = ["run"]
        else:
            before = inputs
    add(model, "model commit", before)
    for e in view.evaluations[:20]:
        scores = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(e.metrics.items()))
        label = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(e.metrics.items())[:2]) or "evaluation"
        add(draw.Node(f"eval-{e.id}", "evaluation", label, f"/runs/{e.run_id}" if e.run_id else "",
                      f"evaluation {e.id[:8]} on {e.dataset_ref} ({e.dataset_commit[:12]}): {scores}"
                      + ("" if e.trusted else " (untrusted)")), "evaluation", ["model"])
    for name, state in services:
        add(draw.Node(f"svc-{name}", "service", f"service {name}", f"/services/{name}",
                      f"service {name} ({state}) serving commit {view.model_commit[:12]}"), "service",
            ["model"])
    return nodes, edges, table


# -- runs ----------------------------------------------------------------------------------------
def _terminal(run: RunView, flow_terminal: bool | None) -> bool:
    """Whether the live part may stop asking: the run ended, its flow run too (or there is
    none to ask about), and the log has had time to arrive."""
    if run.state not in ENDED:
        return False
    if flow_terminal is False:
        return False
    if run.finished_at is None or not run.prefect_flow_run_id:
        return True
    return (datetime.now(UTC) - run.finished_at).total_seconds() > LOG_GRACE_SECONDS


def _live_context(hub: Hub, who: Principal, run_id: str) -> dict[str, Any]:
    """What the run page's live part shows: the run's state and results, its flow run's state,
    links and log (what the orchestrator does not answer is said, not raised)."""
    run = hub.get_run(who, run_id)
    flow: Any = None
    lines: list[LogLine] = []
    problem = prefect = ""
    total = 0
    if run.prefect_flow_run_id:
        try:
            flow = hub.job_launcher.flow_run(run.prefect_flow_run_id)
            prefect = _http(hub.job_launcher.ui_url(run.prefect_flow_run_id))
            lines = hub.job_launcher.logs(run.prefect_flow_run_id, 0, LOG_READ)
            total = len(lines)
            lines = lines[-LOG_SHOWN:]
        except LauncherUnavailable as e:
            problem = str(e)
        except errors.NotFoundError:
            problem = "the orchestrator does not know this run's flow run (any more)"
    flow_terminal = None if flow is None else bool(flow.terminal)
    visible = _visible_model(hub, who, run)
    # its evaluations are recorded as it ends: read once it has
    evaluations = [e for e in hub.list_evaluations(who, run.model) if e.run_id == run.id] \
        if visible and run.state in ENDED and run.kind in ("train", "continue_train", "evaluate") else []
    return {"run": run, "flow": flow, "lines": lines, "total_lines": total, "problem": problem,
            "terminal": _terminal(run, flow_terminal), "prefect": prefect,
            "mlflow": mlflow_run_url(run.mlflow_run_id), "evaluations": evaluations,
            "model_path": _path_or_none(run.model) if visible else None, "fmt": _fmt}


def router(hub: Hub) -> APIRouter:
    r = APIRouter()
    base = "/a/{owner}/{kind}/{folder}/{name}"

    @r.get(base + "/evaluations")
    def evaluations(request: Request, owner: str, kind: str, folder: str, name: str, ref: str = "",
                    offset: int = 0) -> Response:
        who = viewer(hub, request)
        asset = _model(hub, who, owner, kind, folder, name)
        found = hub.list_evaluations(who, asset.path)
        names = _version_names(hub, who, asset.path)
        rows = [_EvalRow(e, _version_label(e.model_commit, names)) for e in found]
        offset = max(0, offset)
        page = rows[offset:offset + EVALS_PAGE]
        metrics = sorted({k for row in rows for k in row.e.metrics})
        return render(hub, request, "jobs_evaluations.html", asset=asset, ref=ref, tab="evaluations",
                      rows=page, total=len(rows), offset=offset, page_size=EVALS_PAGE, metrics=metrics,
                      charts=_evaluation_charts(rows[:500]), fmt=_fmt)

    @r.get(base + "/versions")
    def versions(request: Request, owner: str, kind: str, folder: str, name: str, a: str = "main",
                 b: str = "", diff: str = "", ref: str = "") -> Response:
        who = viewer(hub, request)
        asset = _model(hub, who, owner, kind, folder, name)
        refs = sorted({*(t.name for t in hub.list_tags(who, asset.path)),
                       *(x.name for x in hub.list_branches(who, asset.path))})
        rows: list[_Row] = []
        problem = ""
        if a and b:
            try:
                left = hub.lineage(who, _ref(asset, a, "a"))
                right = hub.lineage(who, _ref(asset, b, "b"))
                rows = compare_rows(_side(hub, who, left), _side(hub, who, right))
            except (errors.RefNotFoundError, errors.InvalidReferenceError) as e:
                problem = str(e)
        only = diff in ("1", "on", "true")
        shown = [row for row in rows if row.differs] if only else rows
        return render(hub, request, "jobs_versions.html", asset=asset, ref=ref or a, tab="versions",
                      a=a, b=b, only=only, rows=shown, total=len(rows),
                      differing=sum(row.differs for row in rows), refs=refs[:500], problem=problem)

    @r.get(base + "/lineage")
    def lineage(request: Request, owner: str, kind: str, folder: str, name: str,
                ref: str = "main") -> Response:
        who = viewer(hub, request)
        asset = _model(hub, who, owner, kind, folder, name)
        view = hub.lineage(who, _ref(asset, ref))
        services = _services_of(hub, asset.path, (view.model_commit, view.commit))
        nodes, edges, table = lineage_nodes(view, services)
        return render(hub, request, "jobs_lineage.html", asset=asset, ref=ref, tab="lineage", view=view,
                      graph=draw.lineage_graph(nodes, edges), table=table,
                      mlflow=mlflow_run_url(view.lineage.mlflow_run_id if view.lineage else ""),
                      fmt=_fmt)

    def _train_page(request: Request, asset: AssetView, ref: str, values: Mapping[str, Mapping[str, str]],
                    problems: Mapping[str, Mapping[str, str]], status: int = 200) -> Response:
        return render(hub, request, "jobs_train.html", status=status, asset=asset, ref=ref, tab="train",
                      values=values, problems=problems, can_train=asset.your_role in ("edit", "owner"))

    def _starter(request: Request, owner: str, kind: str, folder: str, name: str) -> AssetView:
        who = viewer(hub, request)
        hub.require_user(who)
        asset = _model(hub, who, owner, kind, folder, name)
        if asset.your_role not in STARTERS:
            raise errors.ForbiddenError(f"starting jobs on {asset.path} needs the 'run' role or more "
                                        f"(you have {asset.your_role!r})", needed="run")
        return asset

    @r.get(base + "/train")
    def train_form(request: Request, owner: str, kind: str, folder: str, name: str, ref: str = "",
                   rerun: str = "") -> Response:
        asset = _starter(request, owner, kind, folder, name)
        who = viewer(hub, request)
        previous = None
        if rerun:
            previous = hub.get_run(who, rerun)
        else:
            recent = hub.list_runs(who, model=asset.path, limit=1)
            previous = recent[0] if recent else None
        defaults = _defaults(asset, ref, previous)
        return _train_page(request, asset, ref, dict.fromkeys(_FORMS, defaults), {})

    async def _start(request: Request, job: str, owner: str, kind: str, folder: str,
                     name: str) -> Response:
        login, form = await form_of(hub, request)
        asset = _starter(request, owner, kind, folder, name)
        values = {k: field(form, k, limit=20_000 if k == "params" else 2000) for k in _JOB_FIELDS[job]}
        ref = field(form, "page_ref", limit=200)
        try:
            parameters = _job_parameters(asset, job, values)
            launched = start_job(hub, hub.job_launcher, login.principal, job, parameters,
                                 pool=values.get("pool") or "local")
        except errors.AssetHubError as e:
            status, _ = errors.to_wire(e)
            if isinstance(e, errors.NotFoundError) and not isinstance(e, errors.RefNotFoundError) \
                    and getattr(e, "what", "") == "asset" and str(asset.path) in str(e):
                raise  # the model itself went away or out of sight: the usual 404
            recent = hub.list_runs(login.principal, model=asset.path, limit=1)
            all_values = dict.fromkeys(_FORMS, _defaults(asset, ref, recent[0] if recent else None))
            all_values[job] = {**all_values[job], **values}
            where = _field_of(job, e, values) or "form"
            return _train_page(request, asset, ref, all_values, {job: {where: str(e)}}, status=status)
        return redirect(f"/runs/{launched.run_id}", f"Started {job} run {launched.run_id[:8]}", request)

    @r.post(base + "/train")
    async def start_train(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        return await _start(request, "train", owner, kind, folder, name)

    @r.post(base + "/continue-train")
    async def start_continue(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        return await _start(request, "continue-train", owner, kind, folder, name)

    @r.post(base + "/evaluate")
    async def start_evaluate(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        return await _start(request, "evaluate", owner, kind, folder, name)

    @r.get("/runs")
    def runs(request: Request, state: str = "", kind: str = "", model: str = "",
             limit: int = RUNS_PAGE) -> Response:
        who = viewer(hub, request)
        hub.require_user(who)
        if state and state not in RUN_STATES:
            raise errors.InvalidReferenceError(f"unknown state {state[:20]!r}; use one of "
                                               f"{', '.join(RUN_STATES)}", part="state", value=state[:20])
        if kind and kind not in RUN_KINDS:
            raise errors.InvalidReferenceError(f"unknown kind {kind[:20]!r}; use one of "
                                               f"{', '.join(RUN_KINDS)}", part="kind", value=kind[:20])
        limit = max(1, min(limit, RUNS_MAX))
        found = hub.list_runs(who, model=AssetPath.parse(model) if model else None, state=state or None,
                              kind=kind or None, limit=limit + 1)
        return render(hub, request, "jobs_runs.html", runs=found[:limit], more=len(found) > limit,
                      limit=limit, next_limit=min(limit + RUNS_PAGE, RUNS_MAX), state=state, kind=kind,
                      model=model, states=RUN_STATES, kinds=RUN_KINDS)

    @r.get("/runs/{run_id}")
    def run_page(request: Request, run_id: str) -> Response:
        who = viewer(hub, request)
        hub.require_user(who)
        live = _live_context(hub, who, run_id)
        run: RunView = live["run"]
        model_path = live["model_path"]
        role = hub.role(who, model_path) if model_path is not None else ""
        return render(hub, request, "jobs_run.html",
                      dataset_href=_dataset_url(run.dataset_ref, run.dataset_commit),
                      code_href=_http(run.code_url), can_rerun=role in STARTERS, **live)

    @r.get("/runs/{run_id}/live")
    def run_live(request: Request, run_id: str) -> Response:
        who = viewer(hub, request)
        hub.require_user(who)
        return fragment("jobs_live.html", **_live_context(hub, who, run_id))

    return r


def _path_or_none(text: str) -> AssetPath | None:
    try:
        return AssetPath.parse(text)
    except errors.InvalidReferenceError:
        return None


def _visible_model(hub: Hub, who: Principal, run: RunView) -> bool:
    """Whether the run's model is still there for ``who`` (a run of a deleted model is shown to
    whoever started it, without its model's evaluations)."""
    path = _path_or_none(run.model)
    if path is None:
        return False
    try:
        hub.check(who, path, "view")
    except (errors.NotFoundError, errors.ForbiddenError):
        return False
    return True
