"""How fast the web console's pages are against the REST calls carrying the same data, in one run.

    uv run python bench/console.py [--quick] [-n 30]      # or: make bench-console

Sets up a hub like a busy team's: 1,000 assets in 50 folders (``--quick``: 200 in 10) and one
model of 10,000 files at its root (``--quick``: 2,000), uploaded through the SDK in a few atomic
commits; then, signed in as the admin (who sees everything: the largest pages), requests each
page of :data:`ROWS` ``-n`` times (after warm-up) and the REST call carrying the same data as
many times, alternating, and prints per row: the page's server time (its ``Server-Timing:
app;dur=`` header: from the request's arrival to the response head: session, permission checks,
catalog and lakeFS calls, rendering), the page's wall time (the whole request on loopback), the
REST call's wall time, median and p95 each, and the ratio of the medians page / REST wall. A
page that does not exist on this branch (404) is reported and skipped.

The server runs as its own process (as in production), on a private catalog and a private
lakeFS (its own ``ASSETHUB_HOME``, deleted afterwards).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import start_server  # bench/api.py: the same server, started the same way

from assethub.client import Client
from assethub.console._web import asset_url, folder_url
from infra import lakefs

OWNER = "admin"
BIG = f"{OWNER}/model/bulk/big"  # the asset of many files
FOLDER0 = f"{OWNER}/dataset/f00"  # a folder of the benchmark (20 assets)
ASSET0 = f"{FOLDER0}/asset-0000"

#: (name, console page URL, REST URLs carrying the same data: their times add up): one line
#: per page. An asset page also shows the ref picker (branches and tags).
A0, BIGA = f"/api/v1/assets/{ASSET0}", f"/api/v1/assets/{BIG}"
PICKER = (f"{BIGA}/branches", f"{BIGA}/tags")
ROWS: list[tuple[str, str, tuple[str, ...]]] = [
    ("home", "/", ("/api/v1/folders",)),  # + presets: the API has no preset filter
    ("search 'asset-00'", "/search?q=asset-00", ("/api/v1/assets?q=asset-00&limit=200",)),
    ("search (all)", "/search?kind=dataset", ("/api/v1/assets?kind=dataset&limit=200",)),
    ("tokens", "/tokens", (f"/api/v1/users/{OWNER}/tokens",)),
    ("audit", "/audit", ("/api/v1/audit?limit=101",)),
    ("services", "/services", ("/api/v1/services",)),
    ("folder", folder_url(FOLDER0), (f"/api/v1/folders/{FOLDER0}", f"/api/v1/folders/{FOLDER0}/shares",
                                     "/api/v1/assets?owner=admin&kind=dataset&folder=f00")),
    ("asset", asset_url(ASSET0), (A0, f"{A0}/log?ref=main&limit=1", f"{A0}/branches", f"{A0}/tags")),
    ("asset files (10k root)", asset_url(BIG, "files"), (f"{BIGA}/objects?prefix=f000", *PICKER)),
    ("asset history", asset_url(BIG, "history"), (f"{BIGA}/log?ref=main&limit=50", *PICKER)),
]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def populate(client: Client, folders: int, per_folder: int, files: int, work: Path) -> None:
    """``folders`` dataset folders of ``per_folder`` assets each, and BIG with ``files`` files
    at its root in 4 commits."""
    t0 = time.perf_counter()
    names = [f"{OWNER}/dataset/f{i:02d}" for i in range(folders)]
    for name in names:
        client.create_folder(name, description=f"benchmark folder {name}")

    def make(i: int) -> None:
        folder = names[i % folders]
        client.create_asset(f"{folder}/asset-{i:04d}", description=f"benchmark asset number {i}",
                            labels=["bench", f"group-{i % 7}"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(folders * per_folder)))
    print(f"  {folders * per_folder} assets in {folders} folders: {time.perf_counter() - t0:.0f} s",
          flush=True)
    t0 = time.perf_counter()
    client.create_folder(BIG.rsplit("/", 1)[0])
    client.create_asset(BIG, description="an asset of many files")
    parts = 4
    for part in range(parts):
        d = work / f"part{part}"
        d.mkdir()
        for i in range(part * files // parts, (part + 1) * files // parts):
            (d / f"f{i:05d}.txt").write_text(f"file {i}\n")
        client.upload(f"{BIG}:main", d, message=f"files, part {part + 1} of {parts}")
        shutil.rmtree(d)
    print(f"  {files} files in {parts} commits: {time.perf_counter() - t0:.0f} s", flush=True)


def measure(client: httpx.Client, url: str) -> tuple[float, float | None]:
    """(wall ms, Server-Timing ms or None) of one GET."""
    t0 = time.perf_counter()
    r = client.get(url)
    wall = (time.perf_counter() - t0) * 1000
    r.raise_for_status()
    timing = r.headers.get("server-timing", "")
    for metric in ("app;dur=", "render;dur="):  # the whole server time; else the template's
        if metric in timing:
            return wall, float(timing.split(metric)[1].split(",")[0].split(";")[0])
    return wall, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 assets, 2,000 files")
    parser.add_argument("-n", type=int, default=30, help="requests per page and per REST call")
    args = parser.parse_args()
    folders, per_folder, files = (10, 20, 2_000) if args.quick else (50, 20, 10_000)

    work = Path(tempfile.mkdtemp(prefix="assethub-bench-console-"))
    os.environ["ASSETHUB_HOME"] = str(work / "home")  # a private lakeFS, catalog and server
    lake = lakefs.start()
    proc, url, token = start_server(lake, work / "home")
    try:
        client = Client(url, token, cache_dir=work / "cache")
        print(f"setting up (server {url}, lakeFS {lake.endpoint})", flush=True)
        populate(client, folders, per_folder, files, work)
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        browser = httpx.Client(base_url=url, timeout=120)
        r = browser.post("/signin", data={"token": token})
        assert r.status_code == 303, r.text

        print(f"\n{args.n} requests each after 3 warm-up; ms; ratio = page wall / REST wall "
              "(medians)")
        head = (f"{'page':26} {'server p50':>10} {'p95':>6} {'page p50':>9} {'p95':>6} "
                f"{'REST p50':>9} {'p95':>6} {'ratio':>6}")
        print(head)
        results = []
        for name, page, rest in ROWS:
            if browser.get(page).status_code == 404:
                print(f"{name:26} (no such page on this branch: {page})")
                continue
            for _ in range(3):
                browser.get(page).raise_for_status()
                for call in rest:
                    api.get(call).raise_for_status()
            page_walls, renders, rest_walls = [], [], []
            for _ in range(args.n):  # alternating, so that both see the same machine
                wall, render = measure(browser, page)
                page_walls.append(wall)
                if render is not None:
                    renders.append(render)
                rest_walls.append(sum(measure(api, call)[0] for call in rest))
            renders = renders or [float("nan")]
            ratio = statistics.median(page_walls) / statistics.median(rest_walls)
            results.append((name, statistics.median(page_walls), ratio))
            print(f"{name:26} {statistics.median(renders):10.1f} {p95(renders):6.1f} "
                  f"{statistics.median(page_walls):9.1f} {p95(page_walls):6.1f} "
                  f"{statistics.median(rest_walls):9.1f} {p95(rest_walls):6.1f} {ratio:5.2f}x",
                  flush=True)
        slowest = max(results, key=lambda x: x[1])
        print(f"\nRESULT pages={len(results)} slowest={slowest[0]!r} {slowest[1]:.1f} ms; worst ratio "
              f"{max(x[2] for x in results):.2f}x ({folders * per_folder} assets, {files} files)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        lakefs.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
