"""Starting jobs from the server: a protocol the core calls and an orchestrator implements (stdlib only).

The web console starts train / continue-train / evaluate jobs from a form, inside the server
process: no subprocess, no waiting for the job. :func:`start_job` does what ``assethub train
--deployment`` does (``deployments.run``): it registers the run as the signed-in user,
deferred (the server checks their rights now and keeps the run's job token for the worker's
service user to claim once), then has a :class:`JobLauncher` start the deployment
``<flow>/<pool>`` with only the run's id added to the flow's parameters.

The server's composition root (:func:`assethub.server.build_hub`) picks the launcher through
the ``assethub.job_launchers`` entry point (:func:`assethub.plugins.job_launcher`); Asset Hub's
own is ``deployments.launcher.PrefectJobLauncher``. Without one, :class:`NoJobLauncher` says
why on every call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from assethub.errors import AssetHubError, InvalidReferenceError, JobSpecError, OrchestratorUnavailableError
from assethub.refs import AssetRef

if TYPE_CHECKING:
    from assethub.hub import Hub, Principal

__all__ = ["FLOWS", "FlowRunState", "JobLauncher", "LaunchedJob", "LauncherUnavailable", "LogLine",
           "NoJobLauncher", "start_job"]

_log = logging.getLogger("assethub.launcher")

#: the flows a person starts from a form, and the run kind each registers
FLOWS = {"train": "train", "continue-train": "continue_train", "evaluate": "evaluate", "export": "export"}
# each flow's parameters (its signature in flows/, less run_id) and the ones it cannot do without
_PARAMETERS = {
    "train": ("model", "dataset", "repo", "algorithm", "revision", "subpath", "params", "branch", "command",
              "message"),
    "continue-train": ("base", "dataset", "repo", "algorithm", "revision", "subpath", "params", "branch",
                       "command", "message", "model"),
    "evaluate": ("model", "dataset", "repo", "algorithm", "revision", "subpath", "params", "command"),
    "export": ("model", "format", "quantize", "branch", "dataset", "max_abs_diff", "max_accuracy_drop"),
}
# the dataset and the code may come from the model's job settings or an algorithm (the server
# fills them in when it registers the run)
_REQUIRED = {"train": ("model",), "continue-train": ("base",), "evaluate": ("model",), "export": ("model",)}
# evaluations run next to the data (no GPU deployment of evaluate); exports on the CPU
_LOCAL_ONLY = {"evaluate", "export"}
_POOL = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class LaunchedJob:
    """A job handed to the orchestrator: its run in the catalog, its flow run, the deployment."""

    run_id: str
    flow_run_id: str
    deployment: str


@dataclass(frozen=True)
class FlowRunState:
    """Where a flow run is: the orchestrator's state name (e.g. "Scheduled", "Running",
    "Completed", "Crashed"), whether that is final, its message, and when it started and ended
    (ISO 8601, or "")."""

    id: str
    name: str
    state: str
    terminal: bool
    message: str
    started: str
    ended: str


@dataclass(frozen=True)
class LogLine:
    """One line of a flow run's log: when (ISO 8601), its level name, the text."""

    at: str
    level: str
    message: str


class LauncherUnavailable(OrchestratorUnavailableError):
    """The launcher cannot act here (no orchestrator configured, not reachable, not deployed);
    says what to set or start. An :class:`~assethub.errors.OrchestratorUnavailableError`, so
    one that reaches the server's error handler (a runs page asking for a state) is a 503 too."""


class JobLauncher(Protocol):
    """Starts deployments' flow runs and reads their state and logs. Methods run in the server's
    request threads; any may raise :class:`LauncherUnavailable`."""

    #: the implementation's name (the entry point's)
    name: str

    def submit(self, deployment: str, parameters: Mapping[str, Any]) -> str:
        """Start a flow run of ``deployment`` (``<flow>/<name>``) with ``parameters``; its id.
        Does not wait for it."""
        ...

    def flow_run(self, flow_run_id: str) -> FlowRunState:
        """The flow run's state now (:class:`assethub.errors.NotFoundError` for an unknown id)."""
        ...

    def logs(self, flow_run_id: str, offset: int = 0, limit: int = 500) -> list[LogLine]:
        """The flow run's log lines (its tasks' too), oldest first, from ``offset``, at most ``limit``."""
        ...

    def ui_url(self, flow_run_id: str) -> str:
        """The orchestrator's web page of the flow run ("" if unknown)."""
        ...


class NoJobLauncher:
    """No orchestrator: every call says why."""

    def __init__(self, reason: str, name: str = "launcher") -> None:
        self.name = name
        self.reason = reason

    def submit(self, deployment: str, parameters: Mapping[str, Any]) -> str:
        raise LauncherUnavailable(self.reason)

    def flow_run(self, flow_run_id: str) -> FlowRunState:
        raise LauncherUnavailable(self.reason)

    def logs(self, flow_run_id: str, offset: int = 0, limit: int = 500) -> list[LogLine]:
        raise LauncherUnavailable(self.reason)

    def ui_url(self, flow_run_id: str) -> str:
        raise LauncherUnavailable(self.reason)


def _text(parameters: Mapping[str, Any], name: str) -> str:
    value = parameters.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidReferenceError(f"parameter {name!r} must be a string, not {type(value).__name__}",
                                    part=name, value=str(value)[:200])
    return value.strip()


def _checked(flow: str, parameters: Mapping[str, Any], pool: str) -> dict[str, Any]:
    """The flow's parameters as given, checked for what can be told before anything is
    registered: the flow and pool, unknown or missing parameters, ``params`` a JSON object."""
    if flow not in FLOWS:
        raise InvalidReferenceError(f"unknown job {flow!r}; use one of {', '.join(FLOWS)}",
                                    part="flow", value=str(flow)[:200])
    if not isinstance(pool, str) or not _POOL.fullmatch(pool):
        raise InvalidReferenceError(f"invalid work pool name {pool!r}", part="pool", value=str(pool)[:200])
    if flow in _LOCAL_ONLY and pool != "local":
        raise InvalidReferenceError(f"{flow} runs on the work pool 'local' only, not {pool!r}",
                                    part="pool", value=pool)
    unknown = sorted(set(parameters) - set(_PARAMETERS[flow]))
    if unknown:
        raise InvalidReferenceError(f"{flow} takes no parameter {', '.join(map(repr, unknown))} (it takes "
                                    f"{', '.join(_PARAMETERS[flow])})", part="parameter", value=unknown[0])
    if flow == "export":
        return _export_checked(parameters)
    out: dict[str, Any] = {name: _text(parameters, name) for name in _PARAMETERS[flow] if name != "params"}
    for name in _REQUIRED[flow]:
        if not out[name]:
            what = {"repo": "the training code (a Git URL or path)", "dataset": "a dataset version",
                    "base": "the model version to continue"}.get(name, "a model")
            raise InvalidReferenceError(f"{flow} needs {what}: parameter {name!r}", part=name, value="")
    params = parameters.get("params") or {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) and k for k in params):
        raise InvalidReferenceError("parameter 'params' must map names to values", part="params",
                                    value=str(params)[:200])
    try:
        json.dumps(dict(params), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidReferenceError(f"parameter 'params' must be plain JSON values: {e}", part="params",
                                    value=str(params)[:200]) from None
    out["params"] = dict(params)
    return out


def _export_checked(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """An export's parameters: the version, then its options as :func:`assethub.export.parse_options`
    reads them (numbers for the tolerances)."""
    from assethub.export import parse_options

    out: dict[str, Any] = {name: _text(parameters, name) for name in ("model", "format", "quantize", "branch",
                                                                       "dataset")}
    if not out["model"]:
        raise InvalidReferenceError("export needs a model version: parameter 'model'", part="model", value="")
    options = parse_options(out["format"] or "onnx", out["quantize"], parameters.get("max_abs_diff"),
                            parameters.get("max_accuracy_drop"))
    out.update(options.to_params())
    out["branch"] = out["branch"] or options.default_branch
    if out["branch"] == "main":
        raise InvalidReferenceError("an export goes to a new branch, not main (merge it afterwards)",
                                    part="branch", value="main")
    return out


def _start_export(hub: Hub, launcher: JobLauncher, who: Principal, p: dict[str, Any],
                  pool: str) -> LaunchedJob:
    """An export: registered as ``who`` (``edit`` on the model, ``run`` on the dataset), run on
    the worker through ``export/<pool>``."""
    ref = AssetRef.coerce(p["model"])
    params = {k: p[k] for k in ("format", "quantize", "max_abs_diff", "max_accuracy_drop")}
    run = hub.create_run(who, kind="export", model=str(ref.path), branch=p["branch"], dataset=p["dataset"],
                         base=str(ref), params=params, deferred=True)
    return _submit(hub, launcher, who, run.id, "export", pool,
                   {**{k: v for k, v in p.items() if v not in ("", None)}, "run_id": run.id})


def _submit(hub: Hub, launcher: JobLauncher, who: Principal, run_id: str, flow: str, pool: str,
            flow_parameters: dict[str, Any]) -> LaunchedJob:
    deployment = f"{flow}/{pool}"
    try:
        flow_run_id = launcher.submit(deployment, flow_parameters)
    except LauncherUnavailable as e:
        _not_started(hub, who, run_id, f"its job was not started: {e}")
        raise OrchestratorUnavailableError(f"cannot start the {flow} job: {e}") from None
    except BaseException as e:
        _not_started(hub, who, run_id, f"its job was not started: {type(e).__name__}: {e}")
        raise
    return LaunchedJob(run_id, flow_run_id, deployment)


def start_job(hub: Hub, launcher: JobLauncher, who: Principal, flow: str, parameters: Mapping[str, Any],
              pool: str = "local") -> LaunchedJob:
    """Start ``flow`` ("train", "continue-train", "evaluate" or "export") as ``who`` through the deployment
    ``<flow>/<pool>``; returns at once (the job runs on a worker).

    The run is registered as ``who``, deferred, exactly as ``assethub train --deployment``
    does: their rights on the model, dataset and base model and the refs are checked now (the
    hub's usual 400/403/404 before anything starts), a credential in ``repo`` is kept for them
    and the flow run gets only the clean URL. If the orchestrator does not take the job, the
    run is marked ``crashed`` with the reason (never left pending) and
    :class:`~assethub.errors.OrchestratorUnavailableError` (503) says what to start or set.
    """
    p = _checked(flow, parameters, pool)
    kind = FLOWS[flow]
    if kind == "export":
        return _start_export(hub, launcher, who, p, pool)
    if kind == "evaluate":  # the version to evaluate; a branch it may write its evaluation to
        ref = AssetRef.coerce(p["model"])
        model, base, branch = str(ref.path), str(ref), ref.ref
    elif kind == "continue_train":
        ref = AssetRef.coerce(p["base"])
        model, base, branch = p["model"] or str(ref.path), str(ref), p["branch"]
    else:
        model, base, branch = p["model"], "", p["branch"]
    run = hub.create_run(who, kind=kind, model=model, branch=branch, dataset=p["dataset"], base=base,
                         code_url=p["repo"], code_revision=p["revision"],
                         code_subpath=p["subpath"], command=p["command"], params=p["params"],
                         deferred=True, algorithm=p["algorithm"])
    missing = [what for what, value in (("the training code (repo, or an algorithm)", run.code_url),
                                        ("a dataset version", run.dataset_ref)) if not value]
    if missing:
        _not_started(hub, who, run.id, f"nothing to run: no {' and no '.join(missing)}")
        raise JobSpecError(f"{flow} needs {' and '.join(missing)}: give them, or save them with the model "
                           f"(`assethub configure {model} --repo URL --dataset REF`, or --algorithm NAME)")
    # what the run registered is what runs (the flow reads its run); the parameters show it in
    # the orchestrator's UI, with the URL as recorded: without a credential, and what the
    # model's settings or the algorithm filled in
    flow_parameters = {name: value for name, value in p.items() if value or name in _REQUIRED[flow]}
    filled = {"repo": run.code_url, "subpath": run.code_subpath, "dataset": run.dataset_ref}
    flow_parameters.update({k: v for k, v in filled.items() if v}, revision=run.code_revision, run_id=run.id)
    return _submit(hub, launcher, who, run.id, flow, pool, flow_parameters)


def _not_started(hub: Hub, who: Principal, run_id: str, reason: str) -> None:
    """Mark the run crashed (its job token is revoked with it): nothing will claim it."""
    try:
        hub.update_run(who, run_id, state="crashed", error=reason[:10_000])
    except AssetHubError as e:  # the crash check marks it after ASSETHUB_NEVER_STARTED_SECONDS
        _log.warning("could not mark run %s crashed (%s): %s", run_id, reason, e)
