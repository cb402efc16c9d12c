"""What a CLI command loads when it starts: only the commands it runs, and no HTTP/2 code.

The lazily loaded command modules are listed in ``assethub.cli._LAZY`` (so that ``--help``
lists them in order without importing them); these tests hold that table to what the modules
register, and check in a fresh interpreter what ``assethub ls`` leaves out."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assethub import cli

LAZY_MODULES = ("cli_jobs", "cli_deploy", "cli_services", "cli_stack")


@pytest.mark.parametrize("module", sorted(cli._LAZY))
def test_the_table_of_lazy_commands_names_what_each_module_registers(module: str) -> None:
    registers, commands, groups = cli._LAZY[module]
    sub = typer.Typer()
    for register in registers:
        getattr(importlib.import_module(f"assethub.{module}"), register)(sub)
    built = typer.main.get_group(sub).commands
    assert list(built) == [*commands, *groups]
    assert [n for n, c in built.items() if hasattr(c, "list_commands")] == list(groups)


def test_help_lists_every_command_once_and_each_one_runs_its_help() -> None:
    runner = CliRunner()
    group = typer.main.get_command(cli.app)
    names = group.list_commands(typer.Context(group))
    assert len(names) == len(set(names))
    assert {*cli._LAZY_MODULE, *cli._GROUPS} <= set(names)
    for name in names:
        result = runner.invoke(cli.app, [name, "--help"], prog_name="assethub")
        assert result.exit_code == 0, (name, result.output)
        assert f"Usage: assethub {name} " in result.output


def test_a_command_loads_no_other_command_module_and_no_http2(tmp_path: Path) -> None:
    """`assethub ls` against a server that is not there (exit 7): it connected (httpcore is
    loaded) without loading h2, and without the modules of the commands it did not run."""
    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
            "sys.argv = ['assethub', 'ls', 'alice/model/f/n:main']\n"
            "from assethub.cli import app\n"
            "app()\n")
    env = {**os.environ, "ASSETHUB_URL": "http://127.0.0.1:9", "ASSETHUB_TOKEN": "ah_x",
           "ASSETHUB_CONFIG": str(tmp_path / "none.json"), "ASSETHUB_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=False)
    assert out.returncode == 7, out.stderr
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "httpcore" in loaded
    assert sorted(loaded & {"h2", "hpack", "hyperframe", "httpcore._sync.http2"}) == []
    assert sorted(loaded & {f"assethub.{m}" for m in LAZY_MODULES}) == []


def test_http2_still_works_in_a_process_where_the_client_loaded_httpcore() -> None:
    code = ("import sys, httpx\n"
            "from assethub.client import Client\n"
            "hub = Client('http://127.0.0.1:9', transport=httpx.MockTransport(lambda r: None))\n"
            "hub._http\n"
            "assert 'httpcore' in sys.modules and 'h2' not in sys.modules\n"
            "import httpcore\n"
            "from httpcore._sync.http2 import HTTP2Connection\n"
            "from httpcore._async.http2 import AsyncHTTP2Connection\n"
            "httpx.Client(http2=True).close()\n"
            "print('h2' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True"]


def test_help_loads_neither_markdown_nor_tracebacks_and_both_still_render() -> None:
    code = ("import sys\n"
            "sys.argv = ['assethub', '--help']\n"
            "from assethub.cli import app\n"
            "try:\n"
            "    app()\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in sys.modules if m in ('rich.markdown', 'rich.traceback')))\n"
            "from typer import rich_utils\n"
            "from typer.models import DeveloperExceptionConfig\n"
            "try:\n"
            "    raise ValueError('boom')\n"
            "except ValueError as exc:\n"
            "    tb = rich_utils.get_traceback(exc, DeveloperExceptionConfig(), [])\n"
            "md = rich_utils._make_rich_text(text='**a**', markup_mode='markdown')\n"
            "print(type(tb).__module__, type(md).__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "whoami" in out.stdout
    assert out.stdout.splitlines()[-2:] == ["[]", "rich.traceback rich.markdown"]
