"""The flows' command line and what the flows may import: ``python -m flows NAME`` runs each flow's
``cli``, lists them with ``--help`` and exits like the `assethub` CLI; flows order tasks (no SDK
calls of their own, no Typer), and no package reaches into another one's private names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from assethub import errors
from flows import cli

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("assethub", "tasks", "flows", "deployments", "infra")


def test_help_lists_every_flow_with_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.dispatch(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m flows NAME [ARGS...]")
    for name in cli.FLOWS:
        assert f"  {name} " in out, name
    assert "Train a model from a dataset version and a Git repository of training code." in out
    assert cli.dispatch([]) == 2 and "usage: python -m flows" in capsys.readouterr().err


def test_an_unknown_flow_is_refused_with_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.dispatch(["trian", "--model", "x"]) == 2
    err = capsys.readouterr().err
    assert "no flow 'trian'" in err and "continue-train" in err


@pytest.mark.parametrize("name", ["continue-train", "continue_train"])
def test_a_flow_is_run_by_its_prefect_name_or_module_name(name: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.dispatch([name, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m flows continue-train ") and "--base" in out


@pytest.mark.parametrize("name, module", list(cli.FLOWS.items()))
def test_each_name_is_the_prefect_name_of_its_module_flow(name: str, module: str) -> None:
    flows = [v for v in vars(importlib.import_module(module)).values()
             if getattr(v, "name", None) == name and hasattr(v, "parameters")]
    assert flows, f"{module} has no flow named {name!r} (deployments and the UI use that name)"


def test_exit_codes_are_those_of_the_assethub_cli() -> None:
    from assethub.cli import EXIT_CODES

    assert [(classes, code) for classes, code, _ in EXIT_CODES] == list(cli.EXIT_CODES)
    assert cli.exit_code(errors.CodeFetchError("revision 'x' not found")) == 3
    assert cli.exit_code(errors.ForbiddenError("no", needed="run")) == 5
    assert cli.exit_code(errors.JobFailedError("exit 3", exit_code=3)) == 1
    assert cli.exit_code(RuntimeError("not ours")) == 1


def test_params_from_the_command_line_are_typed() -> None:
    assert cli.parse_param("epochs=3") == ("epochs", 3)
    assert cli.parse_param("lr=1e-3") == ("lr", 1e-3)
    assert cli.parse_param("fast=true") == ("fast", True)
    assert cli.parse_param("name=resnet") == ("name", "resnet")
    assert cli.parse_param("expr=a=b") == ("expr", "a=b")
    assert cli.parse_param("obj={a: 1}") == ("obj", "{a: 1}")
    with pytest.raises(Exception, match="key=value"):
        cli.parse_param("novalue")


# -- what may be imported where -----------------------------------------------------------------
def _imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of each import in ``path`` (name "" for ``import module``)."""
    out: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.lineno, node.module, alias.name) for alias in node.names]
    return out


def _modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def test_no_package_imports_private_names_of_another() -> None:
    """Another package's private modules and names stay its own (what is shared is public), and
    in the layers above the core a private name is not imported by another module either."""
    found = []
    for path in _modules(*PACKAGES):
        home = path.relative_to(ROOT).parts[0]
        for line, module, name in _imports(path):
            top = module.split(".")[0]
            if top not in PACKAGES:
                continue
            private_module = any(part.startswith("_") for part in module.split("."))
            private_name = name.startswith("_")
            if (top != home and (private_module or private_name)) or (home != "assethub" and private_name):
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} {name}".strip())
    assert not found, "imports of private names:\n" + "\n".join(found)


def test_flows_only_order_tasks_and_load_no_typer() -> None:
    """No SDK client in a flow (a step that talks to the server is a task), no Typer or Rich
    (the flows' command line is argparse), no `assethub.cli` (it loads both)."""
    found = []
    for path in _modules("flows"):
        for line, module, name in _imports(path):
            banned = (module.split(".")[0] in ("typer", "rich", "httpx")
                      or module.startswith(("assethub.cli", "assethub.client"))
                      or (module == "tasks.env" and name == "client"))
            if banned:
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} {name}".strip())
    assert not found, "flows import what only tasks (or the CLI) should:\n" + "\n".join(found)
