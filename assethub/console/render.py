"""HTML fragments for the web console: sanitised Markdown, inline-SVG charts, the lineage graph,
line diffs and human-friendly sizes and times.

Every function returns a ``markupsafe.Markup`` (or a plain ``str``) that templates insert as-is,
so everything that comes from a user — card text, labels, names, ids, hrefs — is escaped or
sanitised here and nowhere else. The functions are pure: no I/O, no global state, and cheap
enough to call per request.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import nh3
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape

__all__ = [
    "Node",
    "bar_chart",
    "diff_lines",
    "human_size",
    "human_time",
    "layout_columns",
    "line_chart",
    "lineage_graph",
    "markdown",
    "nice_ticks",
    "split_front_matter",
    "time_tag",
]

# --------------------------------------------------------------------------------------------
# Escaping helpers

# Characters XML 1.0 forbids (C0 controls but tab/newline/CR, lone surrogates, U+FFFE/U+FFFF):
# browsers tolerate them in HTML, but they would make the inline SVG ill-formed.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object) -> Markup:
    """``value`` as escaped text, safe both as element content and inside a quoted attribute."""
    return escape(_XML_INVALID.sub("\ufffd", str(value)))


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: max(limit - 1, 1)] + "…"


def _num(value: float) -> str:
    """A compact, readable number: 12 → "12", 1234567 → "1,234,567", 0.12345 → "0.1235"."""
    if not math.isfinite(value):
        return "—"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3g}"


_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.I)


def _safe_href(href: str) -> str:
    """``href`` if it is http(s), mailto or relative; "" otherwise (javascript:, data:, ...)."""
    # Browsers ignore tabs, newlines and leading controls in a URL's scheme ("java\tscript:").
    probe = "".join(ch for ch in href if ch > " ")
    scheme = _SCHEME.match(probe)
    if not probe or (scheme and scheme.group(1).lower() not in {"http", "https", "mailto"}):
        return ""
    return href


# --------------------------------------------------------------------------------------------
# Markdown

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(metadata, body) of a Markdown text with a YAML front matter block at the top (as on
    Hugging Face model cards). Without one, or when it is not valid YAML or not a mapping:
    ``({}, text)`` with the text unchanged."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}, text
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        # e.g. "---\nTitle\n---": a thematic break and a heading, not metadata.
        return {}, text
    return {str(k): v for k, v in meta.items()}, text[match.end() :]


_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "code", "pre", "blockquote",
    "table", "thead", "tbody", "tr", "th", "td", "a", "img", "details", "summary", "hr", "br",
    "em", "strong", "del", "s", "sup", "sub",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "details": {"open"},
    **{f"h{i}": {"id"} for i in range(1, 7)},
}
_ALIGN = {"left", "right", "center"}
# Their content goes too, not only the tag: style sheets, scripts and embedded documents are
# never text a reader should see.
_DROP_WITH_CONTENT = {"script", "style", "template", "svg", "math", "iframe", "object", "noscript"}


def _relative_url(link_base: str, id_prefix: str) -> Callable[[str], str | None]:
    def rewrite(url: str) -> str | None:
        if url.startswith("#"):
            # Heading ids carry the prefix, so in-page links must too.
            fragment = url[1:]
            return url if fragment.startswith(id_prefix) else f"#{id_prefix}{fragment}"
        if not link_base or url.startswith(("/", "?")):
            return url  # absolute path or scheme-relative: nothing to resolve against
        path = url[2:] if url.startswith("./") else url
        joined = link_base + path if link_base.endswith("/") else f"{link_base}/{path}"
        # nh3 does not check what this returns: a bad base must not smuggle in a scheme.
        return _safe_href(joined) or None

    return rewrite


@lru_cache(maxsize=32)
def _cleaner(id_prefix: str, link_base: str) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        tag_attribute_values={"th": {"align": _ALIGN}, "td": {"align": _ALIGN}},
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
        url_relative=_relative_url(link_base, id_prefix),
        id_prefix=id_prefix or None,
        strip_comments=True,
    )


# js-default: CommonMark + tables + strikethrough. Its raw HTML is off by default; turned on so
# cards keep <details>, <sup> and the like, since nh3 cleans the result anyway.
_MD = MarkdownIt("js-default", {"html": True})
_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)


def _slug(text: str) -> str:
    return _SLUG_DROP.sub("", text.strip().lower()).replace(" ", "-")


def _prepare(tokens: list[Token]) -> None:
    """Give headings GitHub-style ids and turn table alignment styles into ``align``."""
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            base = _slug(tokens[i + 1].content) or "section"
            count = seen.get(base, 0)
            seen[base] = count + 1
            token.attrSet("id", base if count == 0 else f"{base}-{count}")
        elif token.type in ("th_open", "td_open"):
            style = str(token.attrGet("style") or "")
            if style.startswith("text-align:"):
                token.attrs.pop("style", None)
                token.attrSet("align", style.removeprefix("text-align:"))


def markdown(text: str, *, id_prefix: str = "user-content-", link_base: str = "") -> Markup:
    """Sanitised HTML of a Markdown text (its front matter left out), in a wrapper htmx
    ignores. Only an allow-list of tags and attributes survives; links keep only http, https,
    mailto and relative URLs and get ``rel="noopener noreferrer nofollow"``; heading ids and
    in-page ``#fragment`` links get ``id_prefix``; relative URLs are prefixed with
    ``link_base`` when given."""
    _, body = split_front_matter(text)
    env: dict[str, Any] = {}
    tokens = _MD.parse(body, env)
    _prepare(tokens)
    html = _MD.renderer.render(tokens, _MD.options, env)
    clean = _cleaner(id_prefix, link_base).clean(html)
    # hx-disable (htmx 2) / hx-ignore (htmx 4): even if an hx-* attribute slipped through,
    # htmx would not process it here.
    return Markup('<div class="markdown-body" hx-disable hx-ignore>') + Markup(clean) + Markup("</div>")


# --------------------------------------------------------------------------------------------
# Charts

_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
_TITLE = Markup('<title>{0}</title><text class="chart-title" x="0" y="14" font-weight="bold">{0}</text>')


def _svg_open(width: float, height: float, label: str, *, role: str = "img", cls: str = "chart") -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" role="{role}" aria-label="{label}" '
        'width="{w}" height="{h}" viewBox="0 0 {w} {h}" {font}>'
    ).format(cls=cls, role=role, label=_text(label), w=_fmt(width), h=_fmt(height), font=Markup(_FONT))


def _fmt(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    out = f"{value:.1f}"
    return out[:-2] if out.endswith(".0") else out


def _empty(title: str, what: str) -> Markup:
    return Markup('<p class="chart-empty">{}: {}</p>').format(_text(title), what)


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    max_bars: int = 50,
) -> Markup:
    """A horizontal bar chart as inline SVG, one bar per (label, value) in the given order.
    Past ``max_bars`` items only the largest ``max_bars`` are drawn (largest first) with a
    "+k more" note. Negative and non-finite values draw no bar but still show their value."""
    if not items:
        return _empty(title, "no data")
    rows = list(items)
    hidden = 0
    if len(rows) > max_bars:
        hidden = len(rows) - max_bars
        rows = sorted(rows, key=lambda r: r[1] if math.isfinite(r[1]) else -math.inf, reverse=True)
        rows = rows[:max_bars]
    suffix = f" {unit}" if unit else ""
    top = max((v for _, v in rows if math.isfinite(v)), default=0.0)
    scale_max = top if top > 0 else 1.0
    bar_h, gap, head = 18, 6, 24
    label_w = round(width * 0.3)
    # Room for the longest value text right of the longest bar (about 7 px a character).
    value_w = 7 * max(len(_num(v) + suffix) for _, v in rows) + 8
    bar_space = max(width - label_w - value_w - 8, 10)
    height = head + len(rows) * (bar_h + gap) + (20 if hidden else 0)
    label_chars = max(label_w // 7, 4)

    parts = [_svg_open(width, height, title)]
    parts.append(_TITLE.format(_text(title)))
    for i, (label, value) in enumerate(rows):
        y = head + i * (bar_h + gap)
        length = bar_space * value / scale_max if math.isfinite(value) and value > 0 else 0.0
        shown = _num(value) + suffix
        parts.append(
            Markup(
                '<g class="bar"><title>{full}: {shown}</title>'
                '<text class="bar-label" x="{lx}" y="{ty}" text-anchor="end">{short}</text>'
                '<rect class="bar-rect" x="{bx}" y="{y}" width="{bw}" height="{bh}" fill="{fill}"/>'
                '<text class="bar-value" x="{vx}" y="{ty}">{shown}</text></g>'
            ).format(
                full=_text(label),
                shown=_text(shown),
                short=_text(_truncate(str(label), label_chars)),
                lx=label_w - 6,
                ty=_fmt(y + bar_h * 0.75),
                bx=label_w,
                y=y,
                bw=_fmt(length),
                bh=bar_h,
                fill=_PALETTE[0],
                vx=_fmt(label_w + length + 4),
            )
        )
    if hidden:
        parts.append(
            Markup('<text class="chart-note" x="{}" y="{}">+{} more</text>').format(
                label_w, height - 6, f"{hidden:,}"
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _nice(x: float, round_: bool) -> float:
    exp = math.floor(math.log10(x))
    f = x / 10**exp
    if round_:
        nf = 1 if f < 1.5 else 2 if f < 3 else 5 if f < 7 else 10
    else:
        nf = 1 if f <= 1 else 2 if f <= 2 else 5 if f <= 5 else 10
    return nf * 10.0**exp


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round axis ticks (steps of 1, 2 or 5 times a power of ten) covering ``lo``..``hi``."""
    if lo > hi:
        lo, hi = hi, lo
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    if not math.isfinite(hi - lo):
        return [lo, hi]
    step = _nice(_nice(hi - lo, False) / max(count - 1, 1), True)
    # The epsilon keeps 0.0012 / 0.0002 = 5.999… from adding a tick below the data.
    start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    n = round((end - start) / step)
    decimals = max(0, -math.floor(math.log10(step)))
    return [round(start + i * step, decimals) for i in range(n + 1)]


def line_chart(
    series: Mapping[str, Sequence[tuple[str, float | None]]],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
) -> Markup:
    """A line chart as inline SVG: x = categories (e.g. version labels) in order of first
    appearance, one polyline with dots per series, a legend and round y ticks. Missing (None)
    and non-finite values are skipped; the line joins the points on either side."""
    categories: dict[str, int] = {}
    for points in series.values():
        for x, _ in points:
            categories.setdefault(str(x), len(categories))
    values = [v for pts in series.values() for _, v in pts if v is not None and math.isfinite(v)]
    if not values:
        return _empty(title, "no data")
    ticks = nice_ticks(min(values), max(values))
    y_lo, y_hi = ticks[0], ticks[-1]
    left, right, top = 56, 24, 24
    legend_rows = math.ceil(len(series) / 4)
    bottom = 28 + legend_rows * 18
    plot_w, plot_h = max(width - left - right, 10), max(height - top - bottom, 10)
    n = len(categories)

    def px(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    parts = [_svg_open(width, height, title)]
    parts.append(_TITLE.format(_text(title)))
    decimals = max(0, -math.floor(math.log10(ticks[1] - ticks[0]))) if len(ticks) > 1 else 0
    for t in ticks:
        y = _fmt(py(t))
        parts.append(
            Markup(
                '<g class="tick"><line x1="{l}" x2="{r}" y1="{y}" y2="{y}" stroke="#ddd"/>'
                '<text x="{tx}" y="{y}" dy="4" text-anchor="end">{label}</text></g>'
            ).format(l=left, r=left + plot_w, y=y, tx=left - 6, label=f"{t:,.{decimals}f}")
        )
    # At most ~10 x labels, so long version lists stay legible.
    every = max(1, math.ceil(n / 10))
    for x, i in categories.items():
        # The last category is labelled too, unless that would crowd the one before it.
        if i % every == 0 or (i == n - 1 and i % every > every / 2):
            parts.append(
                Markup(
                    '<text class="x-label" x="{}" y="{}" text-anchor="middle"><title>{}</title>{}</text>'
                ).format(_fmt(px(i)), top + plot_h + 16, _text(x), _text(_truncate(x, 12)))
            )
    for s, (name, points) in enumerate(series.items()):
        colour = _PALETTE[s % len(_PALETTE)]
        present = [(categories[str(x)], str(x), v) for x, v in points if v is not None and math.isfinite(v)]
        parts.append(Markup('<g class="series series-{}">').format(s))
        if len(present) > 1:
            coords = " ".join(f"{_fmt(px(i))},{_fmt(py(v))}" for i, _, v in present)
            line = Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>')
            parts.append(line.format(coords, colour))
        for i, x, v in present:
            dot = Markup('<circle cx="{}" cy="{}" r="3.5" fill="{}"><title>{} @ {}: {}</title></circle>')
            parts.append(dot.format(_fmt(px(i)), _fmt(py(v)), colour, _text(name), _text(x), _num(v)))
        parts.append(Markup("</g>"))
        lx = (s % 4) * (plot_w / 4) + left
        ly = height - bottom + 28 + (s // 4) * 18
        parts.append(
            Markup(
                '<g class="legend-item"><rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
                '<text x="{}" y="{}"><title>{}</title>{}</text></g>'
            ).format(
                _fmt(lx), ly - 9, colour, _fmt(lx + 14), ly, _text(name), _text(_truncate(name, 20))
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


# --------------------------------------------------------------------------------------------
# Lineage graph


@dataclass(frozen=True)
class Node:
    """One box in the lineage graph. ``kind`` (dataset, code, run, model, evaluation, service,
    ...) becomes the CSS class ``node-<kind>``; ``detail`` is the tooltip."""

    id: str
    kind: str
    label: str
    href: str = ""
    detail: str = ""


Edge = tuple[str, str]


def _forward_edges(ids: Sequence[str], edges: Iterable[Edge]) -> tuple[list[Edge], list[Edge]]:
    """(forward, back) edges: a depth-first walk from the sources (then from any node not yet
    reached, for cycles without a source), in the given node order; an edge into a node still
    on the walk's path closes a cycle and is a back edge."""
    known = set(ids)
    out: dict[str, list[str]] = {i: [] for i in ids}
    indegree = dict.fromkeys(ids, 0)
    seen_edges: set[Edge] = set()
    for a, b in edges:
        if a in known and b in known and (a, b) not in seen_edges:
            seen_edges.add((a, b))
            out[a].append(b)
            indegree[b] += 1
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    forward: list[Edge] = []
    back: list[Edge] = []
    roots = [i for i in ids if indegree[i] == 0] + list(ids)
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, k = stack[-1]
            if k < len(out[node]):
                stack[-1] = (node, k + 1)
                child = out[node][k]
                if state.get(child) == 1:
                    back.append((node, child))
                    continue
                forward.append((node, child))
                if child not in state:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[node] = 2
                stack.pop()
    return forward, back


def layout_columns(ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Column of each node: the length of the longest path to it from a source, back edges
    (those closing a cycle) ignored. Unknown ids in ``edges`` are ignored too."""
    forward, _ = _forward_edges(ids, edges)
    preds: dict[str, list[str]] = {i: [] for i in ids}
    succs: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in forward:
        preds[b].append(a)
        succs[a].append(b)
    remaining = {i: len(preds[i]) for i in ids}
    column = dict.fromkeys(ids, 0)
    ready = [i for i in ids if remaining[i] == 0]
    while ready:  # Kahn's order over the acyclic forward edges
        node = ready.pop()
        for child in succs[node]:
            column[child] = max(column[child], column[node] + 1)
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    return column


_KIND = re.compile(r"[^a-z0-9-]+")
def lineage_graph(nodes: Sequence[Node], edges: Sequence[tuple[str, str]]) -> Markup:
    """The lineage graph as inline SVG, left to right: nodes in columns by their longest path
    from a source (input order within a column), edges as curves with arrowheads. A node with
    an ``href`` is a keyboard-focusable link. Edges that close a cycle are drawn dashed and do
    not affect the layout; edges naming unknown nodes are dropped."""
    unique: dict[str, Node] = {}
    for node in nodes:
        unique.setdefault(node.id, node)
    if not unique:
        return Markup('<p class="chart-empty">No lineage recorded.</p>')
    ids = list(unique)
    forward, back = _forward_edges(ids, edges)
    column = layout_columns(ids, edges)
    rows: dict[int, int] = {}
    position: dict[str, tuple[float, float]] = {}
    node_w, node_h, col_gap, row_gap, pad = 180, 44, 60, 16, 8
    for i in ids:
        c = column[i]
        r = rows.get(c, 0)
        rows[c] = r + 1
        position[i] = (pad + c * (node_w + col_gap), pad + r * (node_h + row_gap))
    width = pad * 2 + (max(column.values()) + 1) * (node_w + col_gap) - col_gap
    dip = 28 if back else 0  # room under the boxes for edges that close a cycle
    height = pad * 2 + max(rows.values()) * (node_h + row_gap) - row_gap + dip
    # Unique per graph, so two graphs on one page do not share (duplicate) marker ids.
    digest = hashlib.blake2s("\0".join(ids).encode("utf-8", "replace"), digest_size=4).hexdigest()
    marker = f"lg-arrow-{digest}"

    parts = [_svg_open(width, height, "Lineage graph", role="group", cls="lineage")]
    parts.append(
        Markup(
            '<defs><marker id="{}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>'
        ).format(marker)
    )
    edge = Markup(
        '<path class="{}" d="M{},{} C{},{} {},{} {},{}" fill="none" stroke="#888"{} marker-end="url(#{})"/>'
    )
    for a, b in forward:  # right side of a -> left side of b
        (ax, ay), (bx, by) = position[a], position[b]
        x1, y1, x2, y2 = ax + node_w, ay + node_h / 2, bx, by + node_h / 2
        bend = max((x2 - x1) / 2, 20)
        curve = (x1, y1, x1 + bend, y1, x2 - bend, y2, x2, y2)
        parts.append(edge.format("edge", *map(_fmt, curve), Markup(""), marker))
    for a, b in back:  # bottom of a -> bottom of b, dipping under the boxes, dashed
        (ax, ay), (bx, by) = position[a], position[b]
        x1, y1, x2, y2 = ax + node_w / 2, ay + node_h, bx + node_w / 2, by + node_h
        low = max(y1, y2) + dip
        curve = (x1, y1, x1, low, x2, low, x2, y2)
        dashed = Markup(' stroke-dasharray="4 3"')
        parts.append(edge.format("edge edge-back", *map(_fmt, curve), dashed, marker))
    for i in ids:
        node = unique[i]
        x, y = position[i]
        kind = _KIND.sub("-", node.kind.lower()).strip("-") or "other"
        tooltip = f"{node.kind}: {node.label}" + (f"\n{node.detail}" if node.detail else "")
        box = Markup(
            '<title>{tip}</title><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" ry="6" '
            'fill="#f6f8fa" stroke="#888"/>'
            '<text class="node-label" x="{tx}" y="{ty1}" font-weight="bold">{label}</text>'
            '<text class="node-kind" x="{tx}" y="{ty2}" font-size="10" fill="#555">{kind}</text>'
        ).format(
            tip=_text(tooltip), x=_fmt(x), y=_fmt(y), w=node_w, h=node_h, tx=_fmt(x + 10),
            ty1=_fmt(y + 18), ty2=_fmt(y + 34), label=_text(_truncate(node.label, 24)),
            kind=_text(_truncate(node.kind, 28)),
        )
        href = _safe_href(node.href)
        if href:
            parts.append(
                Markup('<a class="node node-{}" href="{}" aria-label="{}">').format(
                    kind, _text(href), _text(f"{node.kind}: {node.label}")
                )
                + box
                + Markup("</a>")
            )
        else:
            parts.append(Markup('<g class="node node-{}">').format(kind) + box + Markup("</g>"))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


# --------------------------------------------------------------------------------------------
# Diffs

# SequenceMatcher is quadratic when changes interleave (10,000 lines, every third changed: ~6 s),
# so only this many lines of the changed middle of each text are compared.
_MAX_COMPARED = 3000


def _common_ends(a: Sequence[str], b: Sequence[str]) -> tuple[int, int]:
    """(length of the common prefix, length of the common suffix not overlapping it)."""
    limit = min(len(a), len(b))
    prefix = 0
    while prefix < limit and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    return prefix, suffix


def diff_lines(old: str, new: str, *, context: int = 3, max_lines: int = 2000) -> Markup:
    """A unified line diff of two texts as an HTML table (rows ``diff-hunk``, ``diff-add``,
    ``diff-del``, ``diff-ctx`` with old and new line numbers), cut after ``max_lines`` rows
    with a note; a "No differences." paragraph when the texts are equal line by line."""
    a, b = old.splitlines(), new.splitlines()
    prefix, suffix = _common_ends(a, b)
    # The identical ends need no matching: only the changed middle, with its context, goes to
    # difflib, and line numbers are offset by what was cut off the top.
    top = max(prefix - context, 0)
    cut = max(suffix - context, 0)
    a_mid, b_mid = a[top : len(a) - cut], b[top : len(b) - cut]
    partial = len(a_mid) > _MAX_COMPARED or len(b_mid) > _MAX_COMPARED
    a_mid, b_mid = a_mid[:_MAX_COMPARED], b_mid[:_MAX_COMPARED]
    row = Markup(
        '<tr class="{}"><td class="ln">{}</td><td class="ln">{}</td><td class="sign">{}</td>'
        '<td class="code">{}</td></tr>'
    )
    rows: list[Markup] = []
    truncated = False
    for group in difflib.SequenceMatcher(None, a_mid, b_mid, autojunk=False).get_grouped_opcodes(context):
        i1, j1, i2, j2 = group[0][1], group[0][3], group[-1][2], group[-1][4]
        header = f"@@ -{top + i1 + 1},{i2 - i1} +{top + j1 + 1},{j2 - j1} @@"
        lines: list[Markup] = [Markup('<tr class="diff-hunk"><td colspan="4">{}</td></tr>').format(header)]
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [
                    row.format("diff-ctx", top + i + 1, top + j + 1, "", _text(a_mid[i]))
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            lines += [row.format("diff-del", top + i + 1, "", "-", _text(a_mid[i])) for i in range(i1, i2)]
            lines += [row.format("diff-add", "", top + j + 1, "+", _text(b_mid[j])) for j in range(j1, j2)]
        rows += lines
        if len(rows) > max_lines:
            rows, truncated = rows[:max_lines], True
            break
    if not rows:
        return Markup('<p class="diff-empty">No differences.</p>')
    notes = []
    if truncated:
        notes.append(f"Diff truncated after {max_lines:,} lines.")
    if partial:
        notes.append(f"Only the first {_MAX_COMPARED:,} changed lines of each version were compared.")
    for note in notes:
        rows.append(Markup('<tr class="diff-truncated"><td colspan="4">{}</td></tr>').format(note))
    return Markup('<table class="diff">') + Markup("").join(rows) + Markup("</table>")


# --------------------------------------------------------------------------------------------
# Sizes and times


def human_size(n: int) -> str:
    """A byte count for people: 999 → "999 B", 1536 → "1.5 KiB", 3 * 2**30 → "3.0 GiB"."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        value /= 1024
        if value < 1024 or unit == "EiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _as_datetime(value: str | datetime) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ago(seconds: float) -> str:
    minutes, hours, days = seconds / 60, seconds / 3600, seconds / 86400
    if seconds < 45:
        return "just now"
    if minutes < 59.5:
        n, unit = round(minutes), "min"
    elif hours < 23.5:
        n, unit = round(hours), "hour"
    elif days < 29.5:
        n, unit = round(days), "day"
    elif days < 364.5:
        n, unit = round(days / 30.44), "month"
    else:
        n, unit = round(days / 365.25), "year"
    n = max(n, 1)
    return f"{n} {unit}" if unit == "min" or n == 1 else f"{n} {unit}s"


def human_time(value: str | datetime, *, now: datetime | None = None) -> str:
    """How long ago (or how far ahead) a moment is: "just now", "3 min ago", "2 days ago",
    "in 5 hours". Naive datetimes and ISO strings without offset are taken as UTC; a string
    that is not an ISO time comes back unchanged."""
    moment = _as_datetime(value)
    if moment is None:
        return str(value)
    delta = ((now or datetime.now(UTC)) - moment).total_seconds()
    if abs(delta) < 45:
        return "just now"
    return f"{_ago(delta)} ago" if delta > 0 else f"in {_ago(-delta)}"


def time_tag(value: str | datetime, *, now: datetime | None = None) -> Markup:
    """``<time datetime="…" title="exact UTC time">3 min ago</time>``; escaped text for a
    value that is not a time."""
    moment = _as_datetime(value)
    if moment is None:
        return Markup("<span>{}</span>").format(_text(value))
    exact = moment.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        exact.isoformat(), exact.strftime("%Y-%m-%d %H:%M:%S UTC"), human_time(moment, now=now)
    )
