"""Extension points: code outside ``assethub/`` that the core uses without importing it (stdlib only).

The core is the bottom layer: it never imports Prefect, ``flows/`` or ``deployments/``. What
it needs from above is declared as entry points by the package that provides it, and looked
up here by group name only when it is needed::

    [project.entry-points."assethub.commands"]        # extra `assethub` commands
    deploy = "deployments.cli:app"                    # a Typer app with one command

    [project.entry-points."assethub.follow_triggers"]  # what starts a follow's retrains
    prefect = "deployments.triggers:PrefectFollowTriggers"

    [project.entry-points."assethub.job_launchers"]    # what starts a person's job from the server
    prefect = "deployments.launcher:PrefectJobLauncher"

Entry points rather than ``importlib.import_module("deployments...")`` in the core: the core
names no module above it (a test walks its imports), another orchestrator or a build without
Prefect plugs in by installing a different package, and nothing is imported until used (the
CLI lists a command's name from the metadata and imports it when it runs or shows help).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from assethub.launcher import JobLauncher, NoJobLauncher
from assethub.triggers import FollowTriggers, NoFollowTriggers

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

COMMANDS = "assethub.commands"
FOLLOW_TRIGGERS = "assethub.follow_triggers"
JOB_LAUNCHERS = "assethub.job_launchers"

log = logging.getLogger("assethub.plugins")


def available(group: str) -> dict[str, EntryPoint]:
    """The entry points installed in ``group``, by name (nothing is imported)."""
    # imported here: importlib.metadata (email, zipfile, inspect) is a tenth of the CLI's
    # start-up, and a command of its own (`assethub whoami`) never reads entry points
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in sorted(entry_points(group=group), key=lambda ep: ep.name)}


def load(group: str, name: str) -> Any | None:
    """The object the entry point ``name`` of ``group`` names (imported now), or None."""
    ep = available(group).get(name)
    return ep.load() if ep is not None else None


def _installed(group: str, name: str, what: str, are: str, setting: str, turned_off: str) -> Any:
    """The entry point ``name`` of ``group`` (default: the first installed), made with no
    arguments; else the reason (a str) that there is none: turned off (``name`` "none"), not
    installed under that name, or nothing installed. ``what``/``are``: how messages name it."""
    if name == "none":
        return f"{turned_off} ({setting}=none)"
    found = available(group)
    if name and name not in found:
        return f"no {what} named {name!r} {are} installed (installed: {', '.join(found) or 'none'})"
    if not found:
        return f"no {what} {are} installed (entry point group {group!r})"
    ep = found[name] if name else next(iter(found.values()))
    log.info("%s: %s (%s)", what, ep.name, ep.value)
    return ep.load()()


def follow_triggers(name: str = "") -> FollowTriggers:
    """The follow triggers named ``name`` (default: the first installed), made with no
    arguments; :class:`NoFollowTriggers` saying why when there are none (or ``name`` is "none")."""
    made = _installed(FOLLOW_TRIGGERS, name, "follow triggers", "are", "ASSETHUB_FOLLOW_TRIGGERS",
                      "follow triggers are turned off")
    return NoFollowTriggers(made) if isinstance(made, str) else made


def job_launcher(name: str = "") -> JobLauncher:
    """The job launcher named ``name`` (default: the first installed), made with no arguments;
    :class:`NoJobLauncher` saying why when there is none (or ``name`` is "none")."""
    made = _installed(JOB_LAUNCHERS, name, "job launcher", "is", "ASSETHUB_JOB_LAUNCHER",
                      "starting jobs from the server is turned off")
    return NoJobLauncher(made) if isinstance(made, str) else made
