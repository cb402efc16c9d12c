"""The SDK and the CLI load no server-side dependency: a CLI command starts in well under a second.

Checked in a fresh interpreter, since this test session has imported the server long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Packages only the server, the jobs or the training code need.
HEAVY = ("sqlalchemy", "alembic", "lakefs_sdk", "lakefs", "boto3", "botocore", "s3transfer",
         "fastapi", "starlette", "pydantic", "uvicorn", "prefect", "mlflow", "torch", "pandas",
         "numpy", "yaml", "git")


def loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.partition(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize("statement", [
    "import assethub.client, assethub.cli",
    "from assethub.client import Client; Client('http://127.0.0.1:9')",
    "import assethub.wire, assethub.errors, assethub.refs, assethub.lineage",
    "from assethub import AddFile, Client, DeleteFile",
])
def test_the_sdk_and_cli_load_no_server_side_package(statement: str) -> None:
    assert sorted(loaded_after(statement) & set(HEAVY)) == []


def test_the_stdlib_only_modules_import_only_the_standard_library() -> None:
    statement = ("from assethub.wire import *; "
                 "import assethub.wire, assethub.errors, assethub.refs, assethub.lineage, assethub._cache, "
                 "assethub.launcher, assethub.triggers, assethub.plugins")
    at_start = loaded_after("pass")  # __main__, and whatever site-packages' .pth files load
    third_party = loaded_after(statement) - at_start - set(sys.stdlib_module_names) - {"assethub"}
    assert sorted(third_party) == []


def test_a_cli_command_loads_no_server_side_package_and_no_pydantic(tmp_path: Path) -> None:
    """Run `assethub ls ASSET:main` against a server that is not there: it fails (exit 7) after
    parsing its arguments and trying to connect, having loaded none of the heavy packages, nor
    pydantic, which Typer would use to convert its arguments (see assethub.cli)."""
    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
            "sys.argv = ['assethub', 'ls', 'alice/model/f/n:main', '--prefix', 'd/']\n"
            "from assethub.cli import app\n"
            "app()\n")
    env = {**os.environ, "ASSETHUB_URL": "http://127.0.0.1:9", "ASSETHUB_TOKEN": "ah_x",
           "ASSETHUB_CONFIG": str(tmp_path / "none.json"), "ASSETHUB_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=False)
    assert out.returncode == 7, out.stderr
    assert out.stderr.startswith("error: cannot reach the Asset Hub server at http://127.0.0.1:9")
    loaded = {name.partition(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}
    assert sorted(loaded & {*HEAVY, "pydantic"}) == []
