"""The command line of every flow: ``python -m flows NAME ...`` (see ``flows/__main__.py``) and
``python -m flows.NAME ...`` run the same ``cli(argv)`` of the flow's module.

argparse only, no Typer or Rich: the flows' command line loads nothing it does not need, and
``assethub train`` & co. run it in a child process, passing its exit code on.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assethub import errors

__all__ = ["EXIT_CODES", "FLOWS", "dispatch", "exit_code", "job_arguments", "parse_param", "run_cli"]

# The flows, by the name Prefect shows (and deployments use), and the module holding each.
FLOWS: dict[str, str] = {
    "train": "flows.train",
    "continue-train": "flows.continue_train",
    "evaluate": "flows.evaluate",
    "merge": "flows.merge",
    "retrain": "flows.retrain",
    "reproduce": "flows.reproduce",
    "publish-service": "flows.publish_service",
    "export": "flows.export",
}

# The exit codes of the `assethub` CLI: one table in assethub.errors (stdlib only, no Typer).
EXIT_CODES: tuple[tuple[tuple[type[BaseException], ...], int], ...] = tuple(
    (classes, code) for classes, code, _hint in errors.EXIT_CODES)


def exit_code(error: BaseException) -> int:
    """The exit code for ``error``: the same as any `assethub` command's (1 when none says)."""
    return next((code for classes, code in EXIT_CODES if isinstance(error, classes)), 1)


def parse_param(item: str) -> tuple[str, Any]:
    """``key=value``: an int, a float (``1e-3`` too), true/false, or else the string as given."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--param takes key=value, not {item!r}")
    value: Any = raw
    for convert in (int, float):
        try:
            return key.strip(), convert(raw)
        except ValueError:
            pass
    if raw.strip().lower() in ("true", "false"):
        value = raw.strip().lower() == "true"
    return key.strip(), value


def job_arguments(parser: argparse.ArgumentParser, *, code_required: bool = True,
                  settings: bool = False) -> None:
    """The arguments every job that runs training code takes: the dataset and the code. With
    ``settings`` (train, continue-train, evaluate) both may be left out, the model's saved job
    settings giving them, and ``--algorithm`` names code of the library instead of ``--repo``."""
    parser.add_argument("--dataset", required=not settings, default="",
                        help="dataset reference <path>:<tag|branch|commit>"
                        + (" (default: the model's settings)" if settings else ""))
    parser.add_argument("--repo", required=code_required and not settings, default="",
                        help="Git URL or path of the training code"
                        + (" (default: the model's settings)" if settings else ""))
    if settings:
        parser.add_argument("--algorithm", default="",
                            help="an algorithm of the library, <name> or <name>@<version>, instead of --repo")
    parser.add_argument("--revision", default="", help="branch, tag or commit of the code "
                        "(default: the repository's default branch)")
    parser.add_argument("--subpath", default="", help="directory of the code inside the repository")
    parser.add_argument("--param", action="append", type=parse_param, default=[], metavar="KEY=VALUE",
                        help="override a parameter of assethub.yaml (repeatable)")
    parser.add_argument("--command", default="", help="command to run instead of assethub.yaml's")


def run_cli(flow: Callable[..., dict[str, Any]], parser: argparse.ArgumentParser,
            to_kwargs: Callable[[argparse.Namespace], dict[str, Any]],
            argv: Sequence[str] | None = None) -> int:
    """Run ``flow`` from the command line: a summary on stderr, the result as JSON on stdout;
    an Asset Hub error is one line on stderr (and the command's last lines for a failed job)
    and the exit code of :data:`EXIT_CODES`."""
    parser.add_argument("--json", action="store_true", help="print only the result as JSON")
    args = parser.parse_args(argv)
    try:
        kwargs = to_kwargs(args)
        if kwargs.get("repo"):  # a credential in the URL goes to the server before the flow starts
            kwargs["repo"] = _clean_repo(kwargs["repo"])
        result = flow(**kwargs)
    except errors.AssetHubError as e:
        first = " ".join(str(e).split("\n", 1)[0].split())
        print(f"error: {first}", file=sys.stderr)
        if isinstance(e, errors.JobFailedError) and e.tail:
            print(e.tail, file=sys.stderr)
        return exit_code(e)
    print(json.dumps(result, indent=None if args.json else 2, sort_keys=True, default=str))
    return 0


def _clean_repo(repo: str) -> str:
    """``repo`` without credentials (kept by the server for the caller): the flow's parameters,
    logs and run record get only the clean URL."""
    from assethub.gitcred import has_credentials

    if not has_credentials(repo):
        return repo
    from tasks.code import adopt_repo_url

    return adopt_repo_url(repo)


def _summary(module: str) -> str:
    """The first line of ``module``'s docstring, read without importing it (and Prefect)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return doc.split("\n", 1)[0]


def _usage() -> str:
    width = max(map(len, FLOWS))
    rows = "\n".join(f"  {name:<{width}}  {_summary(module)}" for name, module in FLOWS.items())
    return ("usage: python -m flows NAME [ARGS...]\n\n"
            "Run one of Asset Hub's Prefect flows here, reporting to the Prefect API in\n"
            "PREFECT_API_URL (`python -m flows NAME --help` shows a flow's arguments):\n\n"
            f"{rows}\n")


def dispatch(argv: Sequence[str]) -> int:
    """``python -m flows NAME ARGS...``: run flow ``NAME`` (``continue-train`` or
    ``continue_train``) with ``ARGS``; ``--help`` lists the flows."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0].replace("_", "-"), list(argv[1:])
    if name not in FLOWS:
        print(f"error: no flow {argv[0]!r}; the flows are {', '.join(FLOWS)} "
              "(`python -m flows --help`)", file=sys.stderr)
        return 2
    module = importlib.import_module(FLOWS[name])
    code: int = module.cli(rest, prog=f"python -m flows {name}")
    return code
