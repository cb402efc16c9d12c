"""What starts a follow's retrains: a protocol the core calls and an orchestrator implements (stdlib only).

The core stores follows, installs the lakeFS action on the dataset and receives lakeFS's hook;
it does not know how a retrain gets run. A :class:`FollowTriggers` does. The server's
composition root (:func:`assethub.server.build_hub`) picks the implementation through the
``assethub.follow_triggers`` entry point (:mod:`assethub.plugins`); Asset Hub's own is
``deployments.triggers.PrefectFollowTriggers`` (an automation and a schedule per follow on the
``retrain`` deployment, and a Prefect event when a dataset's main moves). Without one, follows
are stored and report that their triggers are not installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["HOOK_HEADER", "HOOK_SECRET_ENV", "LAKEFS_ENV_PREFIX", "FollowTriggers", "LakeFSHook",
           "NoFollowTriggers", "TriggersUnavailable"]

#: lakeFS expands ``{{ ENV.NAME }}`` in a webhook's headers and query parameters (not in its
#: url) from its own environment, for names with this prefix only (``actions.env.prefix``,
#: which ``infra.lakefs`` sets: lakeFS's default is the wider ``LAKEFSACTION_``).
LAKEFS_ENV_PREFIX = "LAKEFSACTION_ASSETHUB_"
#: the variable of lakeFS's environment that holds the hook's secret; the action file names it
HOOK_SECRET_ENV = LAKEFS_ENV_PREFIX + "HOOK_SECRET"
#: the request header in which lakeFS presents the secret to the hook
HOOK_HEADER = "X-AssetHub-Hook-Secret"


@dataclass(frozen=True)
class LakeFSHook:
    """Where lakeFS actions reach the server's hook, and the secret they present (the same
    value as ``HOOK_SECRET_ENV`` in lakeFS's environment). Server settings, never a request's:
    ``base_url`` is how lakeFS reaches this server. No secret: follows install no action and
    the hook refuses every call."""

    base_url: str = ""
    secret: str = field(default="", repr=False)


class TriggersUnavailable(Exception):
    """The implementation cannot act here (e.g. no orchestrator configured); says what to set."""


class FollowTriggers(Protocol):
    """Installs, removes and fires the triggers of follows. Methods run in the server's request
    threads; any may raise :class:`TriggersUnavailable`."""

    #: the key under which a follow's view reports this implementation's state
    name: str

    def install(self, follow_id: int, model: str, dataset: str,
                settings: Mapping[str, Any]) -> dict[str, str]:
        """(Re)install the follow's triggers (retrain on a dataset update, its schedule); what
        was installed, shown to the user."""
        ...

    def remove(self, follow_id: int) -> dict[str, str]:
        """Remove the follow's triggers; what was done."""
        ...

    def dataset_updated(self, dataset: str, commit: str, cause: str = "") -> str:
        """Tell the follows of ``dataset`` that its main is now at ``commit``; an id of the
        notification (the same for the same dataset and commit: lakeFS may call twice)."""
        ...

    def ended_flow_runs(self, ids: Sequence[str], lost_after: float | None = None) -> Mapping[str, str]:
        """Of the orchestrator's flow runs ``ids`` (jobs' runs record theirs), those that ended
        without completing, and why; with ``lost_after`` (seconds), also those still marked
        running whose worker stopped answering for that long (marked crashed there too).
        Runs still going and unknown ids are left out. The server's crash check calls this
        (:meth:`assethub.hub.Jobs.record_crashes`)."""
        ...


class NoFollowTriggers:
    """No orchestrator: follows are stored, their triggers are reported as not installed."""

    def __init__(self, reason: str, name: str = "triggers") -> None:
        self.name = name
        self.reason = reason

    def install(self, follow_id: int, model: str, dataset: str,
                settings: Mapping[str, Any]) -> dict[str, str]:
        raise TriggersUnavailable(self.reason)

    def remove(self, follow_id: int) -> dict[str, str]:
        raise TriggersUnavailable(self.reason)

    def dataset_updated(self, dataset: str, commit: str, cause: str = "") -> str:
        raise TriggersUnavailable(self.reason)

    def ended_flow_runs(self, ids: Sequence[str], lost_after: float | None = None) -> Mapping[str, str]:
        raise TriggersUnavailable(self.reason)
