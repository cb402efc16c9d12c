"""``assethub versions | restore | cat | head``: a dataset's version graph, restoring an old
version as the new main, and reading a version's files without downloading it.

    assethub versions alice/dataset/img/digits             # main, published versions, bases
    assethub restore alice/dataset/img/digits v1           # v1's files as main's, in one commit
    assethub cat alice/dataset/img/digits:v1 README.md
    assethub head alice/dataset/tab/iris:main iris.csv -n 5
"""

# No `from __future__ import annotations`: Typer reads the signature of every command each time
# the CLI starts (see cli_jobs).

import json
import re
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from assethub._json import jsonable

if TYPE_CHECKING:
    from assethub.client import Client
    from assethub.wire import FilePreview, VersionGraph

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
DatasetArg = Annotated[str, typer.Argument(metavar="DATASET", help="<owner>/dataset/<folder>/<name>")]
RefArg = Annotated[str, typer.Argument(
    metavar="DATASET:REF", help="<owner>/<kind>/<folder>/<name>[:<branch|tag|commit>] (default: main)")]
_COMMIT = re.compile(r"[0-9a-f]{40,64}")
_SNIFF = 8000  # as git: a NUL in the first 8000 bytes makes a file binary


def _client() -> "Client":
    from assethub.client import Client

    return Client()


def looks_binary(first: bytes) -> bool:
    """Whether the start of a file says it is not text (a NUL byte, as git and bat decide)."""
    return b"\x00" in first[:_SNIFF]


def _base(graph: "VersionGraph", based_on: str, based_on_commit: str) -> str:
    """What a version was based on, for people: a published version's name, a short commit."""
    names = {v.commit_id: v.tag for v in graph.published}
    if _COMMIT.fullmatch(based_on):
        tag = names.get(based_on)
        return f"{based_on[:12]} ({tag})" if tag else based_on[:12]
    return based_on or "(nothing)"


def _detail(p: "FilePreview") -> str:
    if p.kind == "image":
        return f"{p.image_format} {p.width}x{p.height} {p.mode}".strip()
    if p.kind == "table":
        rows = f"{p.total_rows} rows, " if p.total_rows is not None else ""
        return f"{rows}columns: {', '.join(p.columns)}"
    if p.kind == "text":
        return p.lines[0] if p.lines else ""
    return ""


def register(app: typer.Typer) -> None:
    """Add ``versions``, ``restore``, ``cat`` and ``head`` to the ``assethub`` application."""

    @app.command()
    def versions(dataset: DatasetArg,
                 limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000,
                                                    help="Commits of main to show.")] = 50,
                 as_json: JsonOpt = False) -> None:
        """Show a dataset's version graph: main's commits, what each was based on, the
        published versions."""
        with _client() as hub:
            graph = hub.versions(dataset, limit=limit)
        if as_json:
            typer.echo(json.dumps(jsonable(graph), indent=2))
            return
        table = Table("commit", "", "published", "based on", "author", "date", "message",
                      box=box.SIMPLE_HEAD, header_style="bold")
        for c in graph.commits:
            based = _base(graph, c.based_on, c.based_on_commit)
            if c.restored:
                based += f", restores {c.restored}"
            table.add_row(*(Text(v) for v in (
                c.commit_id[:12], "main" if c.main else "", ", ".join(c.tags), based, c.author,
                c.created.astimezone().strftime("%Y-%m-%d %H:%M"), c.message)))
        console = Console(emoji=False)
        console.print(table)
        if graph.more:
            console.print(Text(f"(older commits: --limit {limit * 2})"))
        if graph.published:
            console.print(Text("published: " + ", ".join(
                f"{v.tag} = {v.commit_id[:12]} (based on "
                f"{_base(graph, v.based_on, v.based_on_commit)})" for v in graph.published)))

    @app.command()
    def restore(dataset: DatasetArg,
                version: Annotated[str, typer.Argument(help="A published version or a commit.")],
                message: Annotated[str | None, typer.Option("--message", "-m")] = None) -> None:
        """Make an old version the new main in one commit (history and published versions stay)."""
        with _client() as hub:
            c = hub.restore(dataset, version, message=message or "")
        typer.echo(f"restored {version} as main of {dataset}: commit {c.id[:12]}")

    @app.command()
    def cat(ref: RefArg, path: Annotated[str, typer.Argument(help="A file of that version.")],
            force: Annotated[bool, typer.Option(
                "--force", "-f", help="Write a binary file to a terminal anyway.")] = False) -> None:
        """Print one file of a version to stdout without downloading the version."""
        out = typer.get_binary_stream("stdout")
        with _client() as hub:
            chunks = hub.cat(ref, path)
            first = next(chunks, b"")
            if not force and out.isatty() and looks_binary(first):
                chunks.close()
                typer.echo(f"error: {path} is a binary file; not written to the terminal "
                           "(redirect it, or use --force)", err=True)
                raise typer.Exit(2)
            out.write(first)
            for chunk in chunks:
                out.write(chunk)
            out.flush()

    @app.command()
    def head(ref: RefArg,
             path: Annotated[str | None, typer.Argument(help="A file (default: the first files).")] = None,
             n: Annotated[int, typer.Option("-n", "--lines", min=1, max=1000,
                                            help="Rows, lines or files.")] = 10,
             as_json: JsonOpt = False) -> None:
        """The first rows of a table (CSV, JSON lines, Parquet), lines of a text or an image's
        size and class; without PATH, the first files. Reads only what it shows."""
        with _client() as hub:
            found = hub.head(ref, path, n=n)
        if as_json:
            typer.echo(json.dumps(jsonable(found), indent=2))
            return
        console = Console(emoji=False)
        if path is None:
            table = Table("path", "size", "kind", "class", "detail", box=box.SIMPLE_HEAD,
                          header_style="bold")
            for p in found.files:
                table.add_row(*(Text(v) for v in (p.path, decimal(p.size), p.kind,
                                                   p.label, _detail(p))))
            console.print(table)
            if found.more:
                console.print(Text(f"(more files: -n {n * 2})"))
            return
        _print_file(console, found.files[0])


def _print_file(console: Console, p: "FilePreview") -> None:
    where = f" (class {p.label}{', ' + p.split if p.split else ''})" if p.label else ""
    if p.kind == "table":
        table = Table(*p.columns, box=box.SIMPLE_HEAD, header_style="bold")
        for row in p.rows:
            table.add_row(*(Text(v) for v in row))
        console.print(table)
        if p.total_rows is not None:
            console.print(Text(f"{len(p.rows)} of {p.total_rows} rows"))
    elif p.kind == "text":
        for line in p.lines:
            console.print(Text(line), soft_wrap=True)
    elif p.kind == "image":
        console.print(Text(f"{p.path}: {p.image_format} image, {p.width}x{p.height}, mode {p.mode}"
                           f"{where}, {decimal(p.size)}"))
    else:
        console.print(Text(f"{p.path}: binary, {decimal(p.size)}{where}"))

