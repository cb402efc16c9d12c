"""The Prefect side of starting jobs from the server: a flow run of a deployment, its state and
its log, on the Prefect API named explicitly (the Asset Hub server calls these from its request
threads, whatever the process's Prefect settings are).

:class:`PrefectJobLauncher` is the core's ``assethub.launcher.JobLauncher``; the server finds it
through the ``assethub.job_launchers`` entry point. Prefect is imported when a method runs,
not with this module (the server's start-up wires it without loading Prefect).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx

from assethub.errors import NotFoundError
from assethub.launcher import FlowRunState, LauncherUnavailable, LogLine
from deployments.triggers import configured_api_url, prefect_client

#: the most log lines the Prefect API returns for one request (PREFECT_API_DEFAULT_LIMIT)
_PAGE = 200


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when is not None else ""


def _flow_run_uuid(flow_run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(flow_run_id)
    except (ValueError, TypeError, AttributeError):
        raise NotFoundError("flow run", str(flow_run_id)[:64]) from None


class PrefectJobLauncher:
    """Jobs started as flow runs of deployments on the Prefect API at ``api_url``, else at
    ``ASSETHUB_PREFECT_API_URL`` or ``PREFECT_API_URL`` as they are at each call (the same
    setting as the follow triggers', :class:`deployments.triggers.PrefectFollowTriggers`)."""

    name = "prefect"

    def __init__(self, api_url: str = "") -> None:
        self._api_url = api_url

    def api_url(self) -> str:
        url = configured_api_url(self._api_url)
        if not url:
            raise LauncherUnavailable("the server has no Prefect API (set ASSETHUB_PREFECT_API_URL; "
                                      "`assethub up` does)")
        return url

    @contextmanager
    def _prefect(self) -> Iterator[Any]:
        """A client of the API; Prefect away or failing is :class:`LauncherUnavailable` naming it."""
        url = self.api_url()
        from prefect.exceptions import PrefectHTTPStatusError

        try:
            with prefect_client(url) as c:
                yield c
        except httpx.TransportError as e:  # refused, reset, timed out
            raise LauncherUnavailable(f"cannot reach Prefect at {url} ({type(e).__name__}: {e}); start it "
                                      "(`assethub up`) or set ASSETHUB_PREFECT_API_URL") from None
        except PrefectHTTPStatusError as e:
            if e.response.status_code < 500:
                raise
            raise LauncherUnavailable(f"Prefect at {url} failed: HTTP {e.response.status_code}") from None

    def submit(self, deployment: str, parameters: Mapping[str, Any]) -> str:
        """Create a flow run of ``deployment`` (``<flow>/<name>``), scheduled now; its id. The
        worker of the deployment's pool picks it up; nothing here waits for that."""
        from prefect.exceptions import ObjectNotFound

        params = dict(parameters)
        # one flow run per registered run, should the same submission reach Prefect twice; not
        # "scheduled ..." or "automation ...": the flow tells a person's run by that (run_trigger)
        key = f"assethub-run {params['run_id']}" if params.get("run_id") else None
        with self._prefect() as c:
            try:
                found = c.read_deployment_by_name(deployment)
            except ObjectNotFound:
                raise LauncherUnavailable(f"no deployment {deployment!r} on the Prefect server at "
                                          f"{self.api_url()}: run `assethub deploy`") from None
            flow_run = c.create_flow_run_from_deployment(found.id, parameters=params, idempotency_key=key)
        logging.getLogger(__name__).info("started %s: flow run %s (%s)", deployment, flow_run.name,
                                         flow_run.id)
        return str(flow_run.id)

    def flow_run(self, flow_run_id: str) -> FlowRunState:
        from prefect.exceptions import ObjectNotFound

        wanted = _flow_run_uuid(flow_run_id)
        with self._prefect() as c:
            try:
                run = c.read_flow_run(wanted)
            except ObjectNotFound:
                raise NotFoundError("flow run", flow_run_id) from None
        state = run.state
        return FlowRunState(id=str(run.id), name=run.name or "",
                            state=state.name if state is not None else "",
                            terminal=bool(state is not None and state.is_final()),
                            message=(state.message or "") if state is not None else "",
                            started=_iso(run.start_time), ended=_iso(run.end_time))

    def logs(self, flow_run_id: str, offset: int = 0, limit: int = 500) -> list[LogLine]:
        """The flow run's log lines (its tasks' included: the training's output), oldest first."""
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
        from prefect.client.schemas.sorting import LogSort

        wanted = _flow_run_uuid(flow_run_id)
        only = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[wanted]))
        out: list[LogLine] = []
        offset, limit = max(0, offset), max(0, limit)
        with self._prefect() as c:
            while len(out) < limit:
                want = min(_PAGE, limit - len(out))
                page = c.read_logs(log_filter=only, offset=offset + len(out), limit=want,
                                   sort=LogSort.TIMESTAMP_ASC)
                out += [LogLine(at=_iso(log.timestamp), level=logging.getLevelName(log.level),
                                message=log.message) for log in page]
                if len(page) < want:
                    break  # that was the last page
        return out

    def ui_url(self, flow_run_id: str) -> str:
        """The Prefect UI's page of the flow run (the UI is served next to its API); "" without an API."""
        url = configured_api_url(self._api_url).rstrip("/")
        try:
            wanted = _flow_run_uuid(flow_run_id)
        except NotFoundError:
            return ""
        if not url:
            return ""
        base = url.removesuffix("/api")
        return f"{base}/runs/flow-run/{wanted}"
