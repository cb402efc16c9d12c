"""``assethub stats DATASET:REF``: a dataset version's statistics; and the rendering of
``assethub diff A B --samples`` (the sample-level diff)."""

# No `from __future__ import annotations`: Typer reads the signature of every command each time
# the CLI starts (see cli_jobs).

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from assethub._json import jsonable

if TYPE_CHECKING:
    from assethub.wire._stats import DatasetStats, NumberSummary, SampleDiff

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]


def _console() -> Console:
    return Console(emoji=False, highlight=False)


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _summary(s: "NumberSummary | None", *, size: bool = False) -> str:
    if s is None or not s.count:
        return "-"
    show = (lambda v: decimal(int(v or 0))) if size else _num
    return f"{s.count:,} · min {show(s.min)} · mean {show(s.mean)} · max {show(s.max)}"


def _kv(rows: list[tuple[str, str]]) -> Table:
    table = Table("", "", box=box.SIMPLE, show_header=False)
    for k, v in rows:
        table.add_row(Text(k, style="bold"), Text(v))
    return table


def render_stats(st: "DatasetStats") -> None:
    out = _console()
    how = "kept in the catalog" if st.cached else f"computed in {st.seconds:.1f} s"
    out.print(_kv([
        ("dataset", f"{st.asset} @ {st.commit_id[:12]}"), ("format", st.format),
        ("split", st.split_rule), ("samples", f"{st.samples:,}"),
        ("files", f"{st.files:,} ({decimal(int(st.file_sizes.total))})"),
        ("file sizes", _summary(st.file_sizes, size=True)),
        ("image sizes", ", ".join(f"{k} ({v:,})" for k, v in st.image_sizes.items()) or "-"),
        ("text lengths", _summary(st.text_lengths) + (" characters" if st.text_lengths else "")),
        ("statistics", how)]))
    splits = list(st.per_split)
    if st.per_class:
        table = Table("class", *splits, "total", box=box.SIMPLE_HEAD, header_style="bold")
        for label, n in st.per_class.items():
            table.add_row(Text(label), *(f"{st.per_split_class.get(s, {}).get(label, 0):,}" for s in splits),
                          f"{n:,}")
        table.add_row(Text("all", style="bold"), *(f"{st.per_split[s]:,}" for s in splits), f"{st.samples:,}")
        out.print(table)
    elif splits:
        out.print(_kv([(f"{s} split", f"{n:,} samples") for s, n in st.per_split.items()]))
    for kind, counts in st.annotations.items():
        out.print(_kv([(f"{kind}: {name}", f"{n:,}") for name, n in counts.items()]))
    for t in st.tables:
        table = Table("column", "type", "missing", "distinct", "most frequent", "mean",
                      box=box.SIMPLE_HEAD, header_style="bold", title=f"{t.path}: {t.rows:,} rows",
                      title_justify="left")
        for c in t.columns:
            top = ", ".join(f"{v[:30]} ({n:,})" for v, n in c.top[:3])
            table.add_row(Text(c.name), c.dtype, f"{c.missing:,}",
                          "many" if c.distinct is None else f"{c.distinct:,}", Text(top), _num(c.mean))
        out.print(table)


def render_sample_diff(d: "SampleDiff", as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(jsonable(d), indent=2))
        return
    out = _console()
    out.print(f"{d.left_commit[:12]} -> {d.right_commit[:12]}: {d.added:,} added, {d.removed:,} removed, "
              f"{d.changed:,} changed, {d.moved:,} moved to another class, {d.renamed:,} renamed")
    if d.groups:
        table = Table("split", "class", "added", "removed", "changed", "moved in", "moved out",
                      box=box.SIMPLE_HEAD, header_style="bold")
        for g in d.groups:
            table.add_row(g.split, Text(g.label), *(str(n) for n in (g.added, g.removed, g.changed,
                                                                    g.moved_in, g.moved_out)))
        out.print(table)
    for m in d.moves[:20]:
        out.print(Text(f"moved {m.old_path} ({m.old_class}) -> {m.new_path} ({m.new_class})"))
    if d.moved > 20:
        out.print(f"... and {d.moved - 20:,} more moves (--json lists {len(d.moves):,})")
    if d.tables:
        table = Table("table", "by", "rows before", "rows after", "added", "removed", "changed",
                      box=box.SIMPLE_HEAD, header_style="bold")
        for t in d.tables:
            table.add_row(Text(t.path), Text(t.key or "content"), f"{t.left_rows:,}", f"{t.right_rows:,}",
                          f"{t.rows_added:,}", f"{t.rows_removed:,}",
                          "-" if t.rows_changed is None else f"{t.rows_changed:,}")
        out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``stats`` to the ``assethub`` application."""

    @app.command()
    def stats(ref: Annotated[str, typer.Argument(metavar="DATASET:REF", help=(
                  "<owner>/dataset/<folder>/<name>[:<ref>] (default ref: main)"))],
              as_json: JsonOpt = False) -> None:
        """Show a dataset version's statistics: samples per class and split, sizes, text
        lengths, annotations, table columns. Computed on the server on the first ask for a
        commit (this waits for it), then kept."""
        from assethub import errors
        from assethub.client import Client

        with Client() as client:
            try:
                st = client.stats(ref, compute=False)
            except errors.NotFoundError as e:
                if e.what != "statistics":
                    raise
                typer.echo(f"computing the statistics of {ref} on the server (the first ask for "
                           "this commit; kept for the next)...", err=True)
                st = client.stats(ref)
        if as_json:
            typer.echo(json.dumps(jsonable(st), indent=2))
        else:
            render_stats(st)
