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


def follow_triggers(name: str = "") -> FollowTriggers:
    """The follow triggers named ``name`` (default: the first installed), made with no
    arguments; :class:`NoFollowTriggers` saying why when there are none (or ``name`` is "none")."""
    if name == "none":
        return NoFollowTriggers("follow triggers are turned off (ASSETHUB_FOLLOW_TRIGGERS=none)")
    found = available(FOLLOW_TRIGGERS)
    if name and name not in found:
        return NoFollowTriggers(f"no follow triggers named {name!r} are installed (installed: "
                                f"{', '.join(found) or 'none'})")
    if not found:
        return NoFollowTriggers(f"no follow triggers are installed (entry point group {FOLLOW_TRIGGERS!r})")
    ep = found[name] if name else next(iter(found.values()))
    log.info("follow triggers: %s (%s)", ep.name, ep.value)
    made: FollowTriggers = ep.load()()
    return made


def job_launcher(name: str = "") -> JobLauncher:
    """The job launcher named ``name`` (default: the first installed), made with no arguments;
    :class:`NoJobLauncher` saying why when there is none (or ``name`` is "none")."""
    if name == "none":
        return NoJobLauncher("starting jobs from the server is turned off (ASSETHUB_JOB_LAUNCHER=none)")
    found = available(JOB_LAUNCHERS)
    if name and name not in found:
        return NoJobLauncher(f"no job launcher named {name!r} is installed (installed: "
                             f"{', '.join(found) or 'none'})")
    if not found:
        return NoJobLauncher(f"no job launcher is installed (entry point group {JOB_LAUNCHERS!r})")
    ep = found[name] if name else next(iter(found.values()))
    log.info("job launcher: %s (%s)", ep.name, ep.value)
    made: JobLauncher = ep.load()()
    return made
