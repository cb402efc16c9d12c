"""The console's HTML fragments: user Markdown comes out sanitised (an XSS corpus leaves nothing
active), every chart and the lineage graph escape their labels and stay well-formed SVG, the
lineage layout puts a chain in order, cycles end, big inputs are capped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from assethub.console.render import (
    Node,
    bar_chart,
    diff_lines,
    human_size,
    human_time,
    layout_columns,
    line_chart,
    lineage_graph,
    markdown,
    nice_ticks,
    split_front_matter,
    time_tag,
)

SVG = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script>&amp;"\'\x00'


class _Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


ALLOWED_TAGS = {
    "div", "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "code", "pre",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "a", "img", "details", "summary",
    "hr", "br", "em", "strong", "del", "s", "sup", "sub",
}  # fmt: skip
SAFE_ATTRIBUTES = {"href", "title", "src", "alt", "width", "height", "start", "open", "id", "align", "rel"}


def assert_inert(html: str) -> None:
    """Only allow-listed tags and attributes, and no URL with a scheme other than http(s)/mailto."""
    found = elements(html)
    assert found[0] == ("div", {"class": "markdown-body", "hx-disable": "", "hx-ignore": ""})
    for tag, attrs in found[1:]:
        assert tag in ALLOWED_TAGS, (tag, html)
        assert set(attrs) <= SAFE_ATTRIBUTES, (tag, attrs)
        for name in ("href", "src"):
            if name in attrs:
                url = "".join(ch for ch in attrs[name] if ch > " ").lower()
                scheme = url.split(":", 1)[0] if ":" in url.split("/", 1)[0] else ""
                assert scheme in ("", "http", "https", "mailto"), (tag, attrs)
        if tag == "a":
            assert attrs["rel"] == "noopener noreferrer nofollow"


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![i](javascript:alert(1))",
    '<a hx-post="/api/assets/delete" hx-trigger="load">x</a>',
    '<div hx-get="/x" hx-on:click="alert(1)" data-hx-post="/y">d</div>',
    '<iframe src="https://example.org"></iframe>',
    "<svg onload=alert(1)><circle/></svg>",
    "<style>body{display:none}</style>",
    '<a href="jav&#x09;ascript:alert(1)">tab entity</a>',
    '<a href="&#106;avascript:alert(1)">decimal entity</a>',
    '<a href="javascript&colon;alert(1)">named entity</a>',
    '<a href="  javascript:alert(1)">leading space</a>',
    '<a href="vbscript:msgbox(1)">vb</a>',
    '<p style="background:url(javascript:alert(1))" class="x" onclick="alert(1)">p</p>',
    '<form action="/x"><input name="a"><button formaction="javascript:alert(1)">b</button></form>',
    '<img src="x" onerror  =  "alert(1)">',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<math><mi xlink:href="javascript:alert(1)">m</mi></math>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<base href="https://example.org/"><meta http-equiv="refresh" content="0;url=https://example.org">',
    '<a href="https://example.org" target="_blank" ping="https://example.org/track">t</a>',
    "<!-- <script>alert(1)</script> -->",
    '<details ontoggle="alert(1)" open><summary>s</summary>x</details>',
]


@pytest.mark.parametrize("attack", XSS)
def test_no_xss_vector_survives_markdown(attack: str) -> None:
    html = markdown(f"Intro\n\n{attack}\n\nOutro")
    assert isinstance(html, Markup)
    assert_inert(html)
    # Independently of the parser: text is escaped, so every "<" left in the output opens a tag
    # that nh3 let through; none of them may carry anything active.
    markup = " ".join(re.findall(r"<[^>]*>", html.lower()))
    for active in ("script", "javascript", "vbscript", "data:", "onerror", "onload", "onclick", "ontoggle",
                   "hx-post", "hx-get", "hx-on", "hx-trigger", "<iframe", "<svg", "<style", "<form", "<input",
                   "<base", "<meta", "<object", "<embed", "<math", "style=", "class=", "target=", "ping="):
        assert active not in markup.replace('class="markdown-body"', ""), (active, html)


def test_script_and_style_content_is_dropped_not_shown() -> None:
    html = markdown("<style>body{display:none}</style>\n<script>alert(1)</script>\n\nok")
    assert "display:none" not in html and "alert" not in html and "ok" in html


def test_details_tables_and_card_formatting_are_kept() -> None:
    html = markdown(
        "# Card\n\n<details open><summary>More</summary>\n\nHidden *text*\n\n</details>\n\n"
        "| metric | value |\n|:--|--:|\n| acc | 0.9 |\n\n~~old~~ H<sub>2</sub>O x<sup>2</sup>\n\n"
        "```python\nprint('<b>')\n```\n"
    )
    tags = [tag for tag, _ in elements(html)]
    for kept in ("details", "summary", "table", "thead", "th", "td", "s", "sub", "sup", "pre", "code", "em"):
        assert kept in tags, kept
    assert ("th", {"align": "left"}) in elements(html) and ("td", {"align": "right"}) in elements(html)
    assert "print(&#x27;&lt;b&gt;&#x27;)" in html or "print('&lt;b&gt;')" in html


def test_links_get_rel_and_relative_urls_the_link_base() -> None:
    html = markdown(
        "[doc](docs/a.md) [here](./b.md) [abs](/x) [ext](https://example.org) [mail](mailto:a@b.c)\n\n"
        "![img](img/p.png)",
        link_base="/ui/acme/model/net/blob/main/",
    )
    links = [attrs for tag, attrs in elements(html) if tag in ("a", "img")]
    assert [a.get("href") or a.get("src") for a in links] == [
        "/ui/acme/model/net/blob/main/docs/a.md",
        "/ui/acme/model/net/blob/main/b.md",
        "/x",
        "https://example.org",
        "mailto:a@b.c",
        "/ui/acme/model/net/blob/main/img/p.png",
    ]
    assert all(a["rel"] == "noopener noreferrer nofollow" for a in links[:5])


def test_a_link_base_cannot_bring_in_a_scheme() -> None:
    html = markdown("[a](b.md) ![i](i.png)", link_base="javascript:alert(1)//")
    assert_inert(html)
    assert "javascript" not in html


def test_heading_ids_and_in_page_links_carry_the_prefix() -> None:
    html = markdown("[go](#model-details)\n\n## Model details\n\n## Model details\n\n<h3 id=raw>R</h3>")
    found = elements(html)
    assert ("a", {"href": "#user-content-model-details", "rel": "noopener noreferrer nofollow"}) in found
    ids = [attrs["id"] for tag, attrs in found if tag in ("h2", "h3")]
    assert ids == ["user-content-model-details", "user-content-model-details-1", "user-content-raw"]
    assert 'id="card-x"' in markdown("# X", id_prefix="card-")


def test_front_matter_is_split_off_and_not_rendered() -> None:
    card = "---\nlicense: mit\ndatasets:\n  - acme/digits\nmetrics: [accuracy]\n---\n# Net\n\nBody"
    meta, body = split_front_matter(card)
    assert meta == {"license": "mit", "datasets": ["acme/digits"], "metrics": ["accuracy"]}
    assert body == "# Net\n\nBody"
    html = markdown(card)
    assert "license" not in html and "<h1" in html


@pytest.mark.parametrize(
    "text",
    [
        "# No front matter\n---\nx: 1\n---\n",  # not at the top
        "---\nkey: [unclosed\n---\nbody",  # invalid YAML
        "---\nJust a heading\n---\nbody",  # a scalar, not metadata
        "---\n- a\n- b\n---\n",  # a list
        "---\nnever closed: 1\n",
        "",
    ],
)
def test_no_valid_front_matter_leaves_the_text_unchanged(text: str) -> None:
    assert split_front_matter(text) == ({}, text)


def test_empty_front_matter_and_windows_line_ends() -> None:
    assert split_front_matter("---\n---\nbody") == ({}, "body")
    assert split_front_matter("---\r\na: 1\r\n---\r\nbody") == ({"a": 1}, "body")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>\"'=/ &#;:ajvscriptonerlodhx-[]()!`*\n")), max_size=80))
def test_any_markup_soup_comes_out_inert(text: str) -> None:
    assert_inert(markdown(text))


def svg_tree(html: str) -> ET.Element:
    """Parses the fragment as XML: proves it is well-formed."""
    root = ET.fromstring(str(html))
    assert root.tag == f"{SVG}svg"
    return root


def all_text(root: ET.Element) -> str:
    return "".join(root.itertext()) + "".join(str(v) for el in root.iter() for v in el.attrib.values())


def test_bar_chart_escapes_labels_and_draws_one_bar_per_item() -> None:
    html = bar_chart([(EVIL, 3.0), ("b", 1.5)], title=EVIL, unit="MB")
    assert "<script" not in html
    root = svg_tree(html)
    assert root.get("role") == "img" and root.get("aria-label", "").startswith('<script>alert("x")')
    bars = root.findall(f"{SVG}g[@class='bar']")
    assert len(bars) == 2
    assert bars[0].findtext(f"{SVG}title") == '<script>alert("x")</script>&amp;"\'\ufffd: 3 MB'
    widths = [float(b.find(f"{SVG}rect").get("width", "")) for b in bars]  # type: ignore[union-attr]
    assert widths[0] == 2 * widths[1] > 0


def test_bar_chart_empty_all_zero_and_odd_values() -> None:
    assert bar_chart([], title="Sizes") == Markup('<p class="chart-empty">Sizes: no data</p>')
    root = svg_tree(bar_chart([("a", 0), ("b", 0)], title="zeros"))
    assert [r.get("width") for r in root.iter(f"{SVG}rect")] == ["0", "0"]
    odd = [("neg", -2.0), ("nan", float("nan")), ("inf", float("inf")), ("ok", 4.0)]
    root = svg_tree(bar_chart(odd, title="t"))
    assert [r.get("width") for r in root.iter(f"{SVG}rect")][:3] == ["0", "0", "0"]
    assert "—" in all_text(root)


def test_a_thousand_bars_are_capped_to_the_largest_fifty() -> None:
    items = [(f"file-{i}", float(i)) for i in range(1000)]
    root = svg_tree(bar_chart(items, title="Files"))
    bars = root.findall(f"{SVG}g[@class='bar']")
    assert len(bars) == 50
    assert bars[0].findtext(f"{SVG}title") == "file-999: 999"
    assert bars[-1].findtext(f"{SVG}title") == "file-950: 950"
    assert root.findtext(f"{SVG}text[@class='chart-note']") == "+950 more"


def test_line_chart_escapes_skips_missing_values_and_draws_a_legend() -> None:
    html = line_chart(
        {EVIL: [("v1", 0.5), ("v2", None), (EVIL, 0.7)], "loss": [("v2", 1.2), ("v3", float("nan"))]},
        title=EVIL,
    )
    assert "<script" not in html
    root = svg_tree(html)
    series = root.findall(f"{SVG}g[@class='series series-0']")[0]
    points = series.find(f"{SVG}polyline").get("points", "").split()  # type: ignore[union-attr]
    assert len(points) == 2  # v2 is missing
    dots = [c.findtext(f"{SVG}title") for c in series.iter(f"{SVG}circle")]
    assert dots[1] == f"{EVIL.replace(chr(0), chr(0xFFFD))} @ {EVIL.replace(chr(0), chr(0xFFFD))}: 0.7"
    legend = [g.findtext(f"{SVG}text/{SVG}title") for g in root.findall(f"{SVG}g[@class='legend-item']")]
    assert legend == [EVIL.replace("\x00", "\ufffd"), "loss"]
    labels = [t.findtext(f"{SVG}title") for t in root.findall(f"{SVG}text[@class='x-label']")]
    assert labels[:2] == ["v1", "v2"]  # categories in order of first appearance


def test_line_chart_single_point_and_no_data() -> None:
    root = svg_tree(line_chart({"acc": [("v1", 0.9)]}, title="one"))
    assert len(list(root.iter(f"{SVG}circle"))) == 1 and not list(root.iter(f"{SVG}polyline"))
    assert "no data" in line_chart({"acc": [("v1", None)]}, title="none")
    assert "no data" in line_chart({}, title="none")


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.5, 1.2, [0.4, 0.6, 0.8, 1.0, 1.2]),
        (0, 0, [-1.0, -0.5, 0.0, 0.5, 1.0]),
        (0, 97, [0, 20, 40, 60, 80, 100]),
        (0.0012, 0.0019, [0.0012, 0.0014, 0.0016, 0.0018, 0.002]),
    ],
)
def test_nice_ticks_are_round_and_cover_the_range(lo: float, hi: float, expected: list[float]) -> None:
    assert nice_ticks(lo, hi) == pytest.approx(expected)


KINDS = ["dataset", "code", "run", "model", "evaluation", "service"]


def test_a_lineage_chain_is_laid_out_in_six_columns_in_order() -> None:
    nodes = [Node(f"n{i}", kind, f"{kind} {i}", href=f"/ui/{kind}/{i}") for i, kind in enumerate(KINDS)]
    # Given out of order: the layout follows the edges, not the list.
    edges = [("n4", "n5"), ("n0", "n1"), ("n2", "n3"), ("n1", "n2"), ("n3", "n4")]
    assert layout_columns([n.id for n in reversed(nodes)], edges) == {f"n{i}": i for i in range(6)}
    root = svg_tree(lineage_graph(list(reversed(nodes)), edges))
    links = root.findall(f"{SVG}a")
    xs = {a.get("class"): float(a.find(f"{SVG}rect").get("x", "")) for a in links}  # type: ignore[union-attr]
    assert sorted(xs, key=lambda c: xs[c]) == [f"node node-{k}" for k in KINDS]
    assert [a.get("href") for a in sorted(links, key=lambda a: xs[a.get("class")])] == [
        f"/ui/{k}/{i}" for i, k in enumerate(KINDS)
    ]
    assert len(root.findall(f"{SVG}path[@class='edge']")) == 5


def test_lineage_columns_follow_the_longest_path_and_keep_input_order() -> None:
    ids = ["data", "code", "run", "model", "eval"]
    edges = [("data", "run"), ("code", "run"), ("run", "model"), ("data", "eval"), ("model", "eval")]
    assert layout_columns(ids, edges) == {"data": 0, "code": 0, "run": 1, "model": 2, "eval": 3}
    root = svg_tree(lineage_graph([Node(i, "x", i) for i in ids], edges))
    ys = [float(g.find(f"{SVG}rect").get("y", "")) for g in root.findall(f"{SVG}g")]  # type: ignore[union-attr]
    assert ys[0] < ys[1]  # data above code: input order within a column


def test_a_lineage_cycle_terminates_and_is_drawn_as_a_back_edge() -> None:
    ids = ["a", "b", "c"]
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("b", "b"), ("a", "ghost")]
    assert layout_columns(ids, edges) == {"a": 0, "b": 1, "c": 2}
    assert layout_columns(["x", "y"], [("x", "y"), ("y", "x")]) == {"x": 0, "y": 1}  # no source at all
    root = svg_tree(lineage_graph([Node(i, "run", i) for i in ids], edges))
    assert len(root.findall(f"{SVG}path[@class='edge']")) == 2
    assert len(root.findall(f"{SVG}path[@class='edge edge-back']")) == 2  # c->a and b->b


def test_lineage_graph_escapes_everything_and_drops_unsafe_links() -> None:
    nodes = [
        Node(EVIL, EVIL, EVIL, href="javascript:alert(1)", detail=EVIL),
        Node("ok", "dataset", "ok", href='/ui/x?a=1&b="2"'),
        Node("tab", "model", "t", href="java\tscript:alert(1)"),
        Node("ok", "run", "duplicate id: the first wins"),
    ]
    html = lineage_graph(nodes, [(EVIL, "ok")])
    assert "<script" not in html and "javascript" not in html
    root = svg_tree(html)
    links = root.findall(f"{SVG}a")
    assert [a.get("href") for a in links] == ['/ui/x?a=1&b="2"']
    classes = [g.get("class") for g in root.findall(f"{SVG}g")]
    assert classes == ["node node-script-alert-x-script-amp", "node node-model"]
    assert "script" in all_text(root)  # shown as text, escaped
    assert lineage_graph([], []) == Markup('<p class="chart-empty">No lineage recorded.</p>')


def test_diff_lines_marks_changes_with_line_numbers_and_escapes() -> None:
    html = diff_lines("a\nb\nc\n<x>", "a\nB\nc\n<x>\n<script>d</script>")
    assert "<script" not in html
    rows = [(attrs.get("class"), text) for (tag, attrs), text in _rows(html)]
    assert ("diff-del", "2||-|b") in rows and ("diff-add", "|2|+|B") in rows
    assert ("diff-add", "|5|+|<script>d</script>") in rows
    assert ("diff-ctx", "4|4||<x>") in rows
    assert diff_lines("same\n", "same") == Markup('<p class="diff-empty">No differences.</p>')


def _rows(html: str) -> list[tuple[tuple[str, dict[str, str]], str]]:
    root = ET.fromstring(str(html))
    return [(("tr", dict(tr.attrib)), "|".join(td.text or "" for td in tr)) for tr in root.iter("tr")]


def test_a_long_diff_is_truncated_with_a_note() -> None:
    old = "\n".join(f"line {i}" for i in range(1000))
    new = "\n".join(f"LINE {i}" for i in range(1000))
    rows = _rows(diff_lines(old, new, max_lines=100))
    assert len(rows) == 101
    assert rows[-1] == (("tr", {"class": "diff-truncated"}), "Diff truncated after 100 lines.")


def test_a_change_deep_in_a_big_file_has_its_real_line_numbers() -> None:
    old = [f"line {i}" for i in range(1, 20001)]
    new = [*old[:11999], "changed", *old[12000:]]
    rows = _rows(diff_lines("\n".join(old), "\n".join(new)))
    assert [text for _, text in rows] == [
        "@@ -11997,7 +11997,7 @@",
        "11997|11997||line 11997", "11998|11998||line 11998", "11999|11999||line 11999",
        "12000||-|line 12000", "|12000|+|changed",
        "12001|12001||line 12001", "12002|12002||line 12002", "12003|12003||line 12003",
    ]  # fmt: skip


def test_a_big_interleaved_diff_compares_a_bounded_part_and_says_so() -> None:
    # Every third of 20,000 lines changed: difflib would take minutes on the whole of it.
    old = "\n".join(f"l{i}" for i in range(20000))
    new = "\n".join(f"l{i}" if i % 3 else f"x{i}" for i in range(20000))
    rows = _rows(diff_lines(old, new))
    assert rows[-2][1] == "Diff truncated after 2,000 lines."
    assert rows[-1][1] == "Only the first 3,000 changed lines of each version were compared."
    assert rows[1][1] == "1||-|l0" and rows[2][1] == "|1|+|x0"


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 999, 1024, 1536, 5 * 2**20, 3 * 2**30)] == [
        "0 B", "999 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 GiB",
    ]  # fmt: skip


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=10), "just now"),
        (timedelta(minutes=1), "1 min ago"),
        (timedelta(minutes=3, seconds=10), "3 min ago"),
        (timedelta(hours=1), "1 hour ago"),
        (timedelta(hours=5), "5 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=12), "12 days ago"),
        (timedelta(days=70), "2 months ago"),
        (timedelta(days=800), "2 years ago"),
        (-timedelta(minutes=5), "in 5 min"),
    ],
)
def test_human_time(delta: timedelta, expected: str) -> None:
    assert human_time(NOW - delta, now=NOW) == expected


def test_human_time_accepts_iso_strings_naive_as_utc() -> None:
    assert human_time("2026-11-30T11:57:00", now=NOW) == "3 min ago"
    assert human_time("2026-11-30T13:57:00+02:00", now=NOW) == "3 min ago"
    assert human_time("2026-11-30T11:57:00Z", now=NOW) == "3 min ago"
    assert human_time("not a time", now=NOW) == "not a time"


def test_time_tag_has_the_exact_time_and_escapes_garbage() -> None:
    tag = time_tag("2026-11-30T13:57:00+02:00", now=NOW)
    assert tag == Markup(
        '<time datetime="2026-11-30T11:57:00+00:00" title="2026-11-30 11:57:00 UTC">3 min ago</time>'
    )
    assert time_tag("<script>x</script>") == Markup("<span>&lt;script&gt;x&lt;/script&gt;</span>")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=30), st.floats(allow_nan=True)), max_size=60))
def test_any_bar_chart_is_well_formed(items: list[tuple[str, float]]) -> None:
    html = bar_chart(items, title="t")
    if items:
        svg_tree(html)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=12, unique=True),
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=30),
)
def test_any_lineage_graph_terminates_and_is_well_formed(
    ids: list[str], pairs: list[tuple[int, int]],
) -> None:
    edges = [(ids[a % len(ids)], ids[b % len(ids)]) for a, b in pairs]
    columns = layout_columns(ids, edges)
    assert set(columns) == set(ids) and all(0 <= c < len(ids) for c in columns.values())
    svg_tree(lineage_graph([Node(i, "run", i, href="/x") for i in ids], edges))
