"""The Prefect side of follows: an event when a dataset's main moves, an automation per follow
that runs the retrain deployment on it, and the follow's cron schedule on that deployment.

:class:`PrefectFollowTriggers` is the core's ``assethub.triggers.FollowTriggers`` on these; the
server finds it through the ``assethub.follow_triggers`` entry point. Every call names the
Prefect API explicitly (the Asset Hub server calls these from its request threads, whatever
the process's Prefect settings are).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from assethub.triggers import TriggersUnavailable
from deployments import RETRAIN

EVENT = "assethub.dataset.updated"
_NAMESPACE = uuid.UUID("6f1c3f4e-6a57-4b8e-9a43-0d7f4a1b2c3d")


def resource_id(dataset: str) -> str:
    return f"assethub.dataset.{dataset}"


def automation_name(follow_id: int) -> str:
    return f"assethub-follow-{follow_id}"


def schedule_slug(follow_id: int) -> str:
    return f"assethub-follow-{follow_id}"


def retrain_parameters(follow_id: int) -> dict[str, Any]:
    """The retrain deployment's parameters for a follow: its id only. The flow's service user
    asks the server to register the run as the follow's owner, with the follow's settings
    (Prefect shows parameters to anyone with its UI: no user, no settings, no secret here)."""
    return {"follow_id": follow_id}


def configured_api_url(api_url: str = "") -> str:
    """The Prefect API the server talks to: ``api_url``, else ``ASSETHUB_PREFECT_API_URL`` or
    ``PREFECT_API_URL`` as they are now (``assethub up`` sets the first); "" when none is set."""
    return api_url or os.environ.get("ASSETHUB_PREFECT_API_URL") or os.environ.get("PREFECT_API_URL") or ""


@contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    """A synchronous Prefect client of the API at ``api_url``, whatever this process's settings."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as c:
        yield c


def install_follow(api_url: str, follow_id: int, model: str, dataset: str,
                   settings: Mapping[str, Any]) -> dict[str, str]:
    """(Re)create the follow's automation and schedule; what was installed."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    params = retrain_parameters(follow_id)
    out: dict[str, str] = {}
    with prefect_client(api_url) as c:
        deployment = c.read_deployment_by_name(RETRAIN)  # run `assethub deploy` first
        _remove(c, follow_id, deployment.id)
        automation = AutomationCore(
            name=automation_name(follow_id),
            description=f"Retrain {model} when {dataset}'s main moves (Asset Hub follow {follow_id})",
            trigger=EventTrigger(expect={EVENT}, match={"prefect.resource.id": resource_id(dataset)},
                                 posture=Posture.Reactive, threshold=1, within=0),
            actions=[RunDeployment(source="selected", deployment_id=deployment.id, parameters=params)],
        )
        out["automation"] = str(c.create_automation(automation))
        if settings.get("schedule"):
            c.create_deployment_schedules(deployment.id, [DeploymentScheduleCreate(
                schedule=CronSchedule(cron=settings["schedule"], timezone="UTC"), active=True,
                parameters=params, slug=schedule_slug(follow_id))])
            out["schedule"] = settings["schedule"]
    return out


def _remove(c: Any, follow_id: int, deployment_id: Any) -> None:
    for a in c.read_automations_by_name(automation_name(follow_id)):
        c.delete_automation(a.id)
    for s in c.read_deployment_schedules(deployment_id):
        if s.slug == schedule_slug(follow_id):
            c.delete_deployment_schedule(deployment_id, s.id)


def remove_follow(api_url: str, follow_id: int) -> dict[str, str]:
    with prefect_client(api_url) as c:
        _remove(c, follow_id, c.read_deployment_by_name(RETRAIN).id)
    return {"removed": str(follow_id)}


def emit_dataset_event(api_url: str, dataset: str, commit: str, cause: str = "") -> str:
    """Post ``assethub.dataset.updated`` for (dataset, commit); its id.

    The id is derived from the pair, so lakeFS retrying a hook (or commit and merge both
    firing) is one event to Prefect: its triggers act on an event id once."""
    event_id = str(uuid.uuid5(_NAMESPACE, f"{dataset}@{commit}"))
    event = {"id": event_id, "occurred": datetime.now(UTC).isoformat(), "event": EVENT,
             "resource": {"prefect.resource.id": resource_id(dataset),
                          "prefect.resource.name": dataset, "assethub.commit": commit},
             "related": [], "payload": {"dataset": dataset, "commit": commit, "cause": cause}}
    r = httpx.post(api_url.rstrip("/") + "/events", json=[event], timeout=10)
    r.raise_for_status()
    return event_id


#: final states of a flow run that did not complete; the run record of such a run is crashed
_ENDED = ("CRASHED", "CANCELLED", "FAILED")
HEARTBEAT = "prefect.flow-run.heartbeat"
#: Prefect's own default of PREFECT_FLOWS_HEARTBEAT_FREQUENCY: assumed while only one heartbeat
#: of a flow run is known (two tell the frequency it runs with)
_DEFAULT_HEARTBEAT_SECONDS = 180.0


def ended_flow_runs(api_url: str, ids: Sequence[str], lost_after: float | None = None) -> dict[str, str]:
    """Of the flow runs ``ids``, those that crashed, were cancelled or failed, or whose parent
    flow run did (a sub-flow run in a process that died stays Running): why, by id. Unknown
    ids and runs still going are left out.

    With ``lost_after`` (seconds), a Running flow run that sent heartbeats
    (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` in its worker's environment) and has sent none for
    that long, and for one and a half heartbeat intervals, lost its worker: nobody will report its end,
    so it is set Crashed in Prefect here and reported "worker lost". A flow run that never sent
    a heartbeat (heartbeats off) is never judged so."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    wanted = []
    for i in ids:
        with contextlib.suppress(ValueError):
            wanted.append(uuid.UUID(i))
    if not wanted:
        return {}
    out: dict[str, str] = {}
    with prefect_client(api_url) as c:
        for run in c.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=wanted))):
            current, parent = run, ""
            for _ in range(4):  # a retrain's sub-flows are one level down
                state = current.state
                if state is not None and state.type.value in _ENDED:
                    out[str(run.id)] = (f"its {parent}flow run is {state.name}: "
                                        f"{state.message or 'no reason given'}")
                    break
                if current.parent_task_run_id is None or (state is not None and state.is_final()):
                    break
                current = c.read_flow_run(c.read_task_run(current.parent_task_run_id).flow_run_id)
                parent = "parent "
            if str(run.id) in out or lost_after is None or run.state is None \
                    or run.state.type.value != "RUNNING":
                continue
            silent = _silent_for(c, str(run.id), lost_after)
            if silent is not None:
                out[str(run.id)] = _crash_lost(c, run.id, silent)
    return out


def _silent_for(c: Any, flow_run_id: str, lost_after: float) -> float | None:
    """Seconds since the flow run's last heartbeat when that is past ``lost_after`` and one
    and a half of its heartbeat intervals (a beat was missed); None while it beats (or never
    did)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventOrder, EventResourceFilter

    # the default time window: since 180 days ago, until now
    page = c.read_events(filter=EventFilter(
        event=EventNameFilter(name=[HEARTBEAT]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
        order=EventOrder.DESC), limit=2)
    beats = sorted((e.occurred for e in page.events), reverse=True)
    if not beats:
        return None
    interval = (beats[0] - beats[1]).total_seconds() if len(beats) > 1 else _DEFAULT_HEARTBEAT_SECONDS
    silent = (datetime.now(UTC) - beats[0]).total_seconds()
    return silent if silent > max(lost_after, 1.5 * interval) else None


def _crash_lost(c: Any, flow_run_id: Any, silent: float) -> str:
    """Set the flow run Crashed (its worker will not); the reason."""
    from prefect.states import Crashed

    reason = (f"worker lost: its flow run sent no heartbeat for {silent:.0f} s (the worker or "
              "its machine died); marked Crashed")
    c.set_flow_run_state(flow_run_id, Crashed(message=reason), force=True)
    return reason


class PrefectFollowTriggers:
    """Follow triggers on the Prefect API at ``api_url``, else at ``ASSETHUB_PREFECT_API_URL``
    or ``PREFECT_API_URL`` as they are at each call (``assethub up`` sets the first)."""

    name = "prefect"

    def __init__(self, api_url: str = "") -> None:
        self._api_url = api_url

    def api_url(self) -> str:
        url = configured_api_url(self._api_url)
        if not url:
            raise TriggersUnavailable("the server has no Prefect API (set PREFECT_API_URL)")
        return url

    def install(self, follow_id: int, model: str, dataset: str,
                settings: Mapping[str, Any]) -> dict[str, str]:
        return install_follow(self.api_url(), follow_id, model, dataset, settings)

    def remove(self, follow_id: int) -> dict[str, str]:
        return remove_follow(self.api_url(), follow_id)

    def dataset_updated(self, dataset: str, commit: str, cause: str = "") -> str:
        return emit_dataset_event(self.api_url(), dataset, commit, cause)

    def ended_flow_runs(self, ids: Sequence[str], lost_after: float | None = None) -> dict[str, str]:
        """Which of the flow runs ``ids`` ended without completing, or lost their worker (no
        heartbeat for ``lost_after`` seconds: set Crashed here), and why (see
        :meth:`assethub.hub.Jobs.record_crashes`)."""
        return ended_flow_runs(self.api_url(), ids, lost_after)
