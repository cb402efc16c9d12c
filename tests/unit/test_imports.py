"""The SDK and the CLI load no server-side dependency: a CLI command starts in well under a second.

Checked in a fresh interpreter, since this test session has imported the server long ago."""

from __future__ import annotations

import json
import subprocess
import sys

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
    statement = "import assethub.wire, assethub.errors, assethub.refs, assethub.lineage, assethub._cache"
    at_start = loaded_after("pass")  # __main__, and whatever site-packages' .pth files load
    third_party = loaded_after(statement) - at_start - set(sys.stdlib_module_names) - {"assethub"}
    assert sorted(third_party) == []
