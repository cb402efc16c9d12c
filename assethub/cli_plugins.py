"""The ``assethub`` command group, with the commands other packages add.

A package adds commands through the ``assethub.commands`` entry point (see
:mod:`assethub.plugins`): ``assethub deploy`` comes from ``deployments.cli`` this way, so the
core CLI never imports ``deployments`` or Prefect. A plugin's name is read from the installed
metadata; its module is imported only when its command runs or the help lists it.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from assethub import plugins


class PluginCommands(TyperGroup):
    """A Typer group that also offers the ``assethub.commands`` entry points as commands."""

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *(name for name in plugins.available(plugins.COMMANDS) if name not in own)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return super().get_command(ctx, cmd_name) or plugin_command(cmd_name)


def plugin_command(name: str) -> Any:
    """The command the entry point ``name`` names (a Typer app of one command, or a Click
    command), imported now; None when no package adds it."""
    found = plugins.load(plugins.COMMANDS, name)
    if isinstance(found, typer.Typer):
        return typer.main.get_command(found)
    return found
