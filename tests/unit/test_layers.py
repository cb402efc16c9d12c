"""The core stays the bottom layer: nothing under assethub/ imports Prefect, flows/ or
deployments/ — not even lazily inside a function — and what it uses from those layers comes
through entry points (assethub.plugins), wired without importing Prefect."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from assethub import follows, plugins
from assethub.triggers import NoFollowTriggers

CORE = Path(__file__).resolve().parents[2] / "assethub"
ABOVE_THE_CORE = ("prefect", "flows", "deployments")


def imports(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``source``: statements anywhere (in functions too) and
    ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value


def above_the_core(module: str) -> bool:
    top = module.split(".")[0]
    return top in ABOVE_THE_CORE or top.startswith("prefect_")


def test_the_walker_sees_lazy_and_dynamic_imports() -> None:
    source = ("import os\n"
              "def f():\n    from deployments import triggers\n"
              "def g():\n    import prefect.client\n"
              "def h():\n    return importlib.import_module('flows.train')\n"
              "from . import sibling\n")
    assert [m for _, m in imports(source) if above_the_core(m)] == ["deployments", "prefect.client",
                                                                   "flows.train"]


def test_the_core_never_imports_prefect_flows_or_deployments() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 30
    found = [f"{path.relative_to(CORE.parent)}:{line}: {module}" for path in modules
             for line, module in imports(path.read_text()) if above_the_core(module)]
    assert not found, "assethub/ imports from above the core:\n" + "\n".join(found)


def test_the_cli_and_the_server_load_no_layer_above_the_core() -> None:
    """Importing the CLI and the server, and wiring the follow triggers and the job launcher,
    imports no Prefect; the plugins' modules load only when the wiring asks for them."""
    script = ("import sys\nimport assethub.cli, assethub.server\n"
              f"above = lambda: sorted({{m.split('.')[0] for m in sys.modules}} & {set(ABOVE_THE_CORE)})\n"
              "print(above())\n"
              "from assethub import plugins\n"
              "print(type(plugins.follow_triggers()).__name__, above())\n"
              "print(type(plugins.job_launcher()).__name__, above())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "PrefectFollowTriggers ['deployments']",
                                "PrefectJobLauncher ['deployments']"]


def test_deploy_is_a_plugin_command_of_the_cli() -> None:
    from assethub.cli import app

    assert plugins.available(plugins.COMMANDS)["deploy"].value == "deployments.cli:app"
    listed = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "deploy" in listed.stdout
    shown = CliRunner().invoke(app, ["deploy", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "work pools" in shown.stdout


def test_a_follow_says_why_its_triggers_are_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.triggers import PrefectFollowTriggers

    def install(hub: Any) -> dict[str, str]:  # what a new follow reports under "triggers"
        return follows._triggers(hub, lambda t: t.install(1, "a/model/f/m", "a/dataset/f/d", {}))

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("ASSETHUB_PREFECT_API_URL", raising=False)
    assert install(SimpleNamespace(follow_triggers=PrefectFollowTriggers())) == {
        "prefect": "not installed: the server has no Prefect API (set PREFECT_API_URL)"}
    assert install(SimpleNamespace(follow_triggers=plugins.follow_triggers("none"))) == {
        "triggers": "not installed: follow triggers are turned off (ASSETHUB_FOLLOW_TRIGGERS=none)"}
    assert isinstance(plugins.follow_triggers("cron"), NoFollowTriggers)
