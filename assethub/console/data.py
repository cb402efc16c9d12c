"""Console pages for what a dataset knows of its samples (issue 15): statistics of a version,
the version graph with restore, a file's preview and the sample-level diff of two versions.

The same hub calls as the REST API (:class:`~assethub.hub.stats.DatasetStatistics`,
:class:`~assethub.hub.datasets.Datasets`), so the same permission checks: ``view`` to read,
``edit`` to restore. Statistics are computed on the first ask for a commit, which may take a
while: the page shows them when kept and otherwise a "Compute" button (a POST, as every change),
which starts the computation on a thread of its own and returns at once; the page then polls
(``dataset/stats/live``) and shows how long it has run until the statistics are there, or why
it failed.
The preview and the sample diff are fragments the file and compare pages load (``data-poll``
of ``static/console.js``: they answer once, without a further poll, even for an error).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from assethub import errors
from assethub.console._web import asset_url, field, form_of, fragment, login_of, redirect, render, viewer
from assethub.console.render import human_size
from assethub.hub import Hub, Principal
from assethub.hub.datasets import Datasets
from assethub.hub.stats import DatasetStatistics
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef

ASSET = "/a/{owner}/{kind}/{folder}/{name}"
#: main's commits the versions page shows
GRAPH_LIMIT = 200
#: rows or lines of a file's preview
PREVIEW_ROWS = 20


log = logging.getLogger(__name__)


class Computations:
    """Statistics the console's Compute button started, by (dataset, commit), on two threads of
    their own: the POST returns at once and the page polls. One computation per commit at a
    time (the hub also computes a commit once per server); an ended one is forgotten once its
    outcome has been shown (its statistics are kept in the catalog) or when many have ended."""

    KEEP = 64

    def __init__(self, stats: DatasetStatistics) -> None:
        self.stats = stats
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # per run: when it started, its outcome, and [files read, files] once reading began
        self._runs: dict[tuple[str, str], tuple[float, Future[Any], list[int]]] = {}

    def start(self, who: Principal, path: AssetPath, commit: str) -> None:
        key = (str(path), commit)
        with self._lock:
            run = self._runs.get(key)
            if run is not None and not run[1].done():
                return
            if len(self._runs) >= self.KEEP:
                for k in [k for k, (_, f, _) in self._runs.items() if f.done()]:
                    del self._runs[k]
            if self._pool is None:
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="console-stats")
            read: list[int] = []
            self._runs[key] = (time.monotonic(),
                               self._pool.submit(self._compute, who, path, commit, read), read)

    def _compute(self, who: Principal, path: AssetPath, commit: str, read: list[int]) -> None:
        def progress(done: int, total: int) -> None:
            read[:] = [done, total]

        try:
            self.stats.stats(who, path.at(commit), progress=progress)
        except errors.AssetHubError:
            raise  # said on the page
        except Exception:
            log.exception("computing the statistics of %s@%s failed", path, commit)
            raise

    def state(self, path: AssetPath, commit: str) -> tuple[dict[str, Any] | None, str | None]:
        """({"seconds": how long it has run, "read": files read or None while the version is
        fetched, "files": of how many}, None) while it runs; (None, why) once it failed, said
        once; (None, None) when none runs (or it ended well: its statistics are kept)."""
        key = (str(path), commit)
        with self._lock:
            run = self._runs.get(key)
            if run is None:
                return None, None
            started, future, read = run
            if not future.done():
                done, total = read if read else (None, None)
                return {"seconds": time.monotonic() - started, "read": done, "files": total}, None
            del self._runs[key]
        exc = future.exception()
        if exc is None:
            return None, None
        if isinstance(exc, errors.AssetHubError):
            return None, errors.to_wire(exc)[1].get("message", str(exc))
        return None, f"an unexpected {type(exc).__name__} (the server's log has the details)"


def _dataset(owner: str, kind: str, folder: str, name: str, request: Request) -> AssetPath:
    path = AssetPath.parse(f"{owner}/{kind}/{folder}/{name}")
    if not path.is_dataset:
        raise errors.NotFoundError("page", request.url.path, "only datasets have this page")
    return path


def _problem(exc: errors.AssetHubError) -> Response:
    """A fragment's answer to an error: the message, and no further poll."""
    status, body = errors.to_wire(exc)
    return fragment("data_problem.html", message=body.get("message", str(exc)), code=status)


def router(hub: Hub) -> APIRouter:
    r = APIRouter()
    datasets = Datasets(hub.versions)
    stats = DatasetStatistics(hub.catalog, hub.storage, hub.permissions, tmp_dir=hub.tmp_dir)
    computations = Computations(stats)

    async def stats_context(who: Principal, path: AssetPath, commit: str) -> dict[str, Any]:
        """What ``data_stats_live.html`` shows of ``commit``: its statistics if kept, else the
        state of a computation the console started."""
        computing, failed = computations.state(path, commit)
        try:
            found = await run_in_threadpool(lambda: stats.stats(who, path.at(commit), compute=False))
        except errors.NotFoundError:
            found = None
        return {"apath": path, "commit": commit, "stats": found, "computing": computing,
                "failed": failed, "human_size": human_size}

    # -- statistics ------------------------------------------------------------------------------
    @r.get(ASSET + "/dataset/stats")
    async def statistics(request: Request, owner: str, kind: str, folder: str, name: str,
                         ref: str = "") -> Response:
        who = viewer(hub, request)
        path = _dataset(owner, kind, folder, name, request)
        asset = await run_in_threadpool(hub.get_asset, who, path)
        at = AssetRef.parse(f"{path}:{ref or DEFAULT_BRANCH}")
        commit = (await run_in_threadpool(hub.get_commit, who, at)).id
        return render(hub, request, "data_stats.html", asset=asset, ref=ref, tab="dataset/stats",
                      shown=ref or DEFAULT_BRANCH, **await stats_context(who, path, commit))

    @r.get(ASSET + "/dataset/stats/live")
    async def statistics_live(request: Request, owner: str, kind: str, folder: str, name: str,
                              commit: str, ref: str = "") -> Response:
        """The statistics part of the page, polled while they are computed."""
        who = viewer(hub, request)
        path = _dataset(owner, kind, folder, name, request)
        commit = (await run_in_threadpool(hub.get_commit, who, path.at(commit))).id  # view, and a commit
        login = login_of(hub, request)
        return fragment("data_stats_live.html", ref=ref, csrf=login.csrf if login else "",
                        **await stats_context(who, path, commit))

    @r.post(ASSET + "/dataset/stats")
    async def compute(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        """Start computing (and keeping) the statistics of a commit: anyone who may view the
        dataset. Returns at once; the page shows the computation until it has ended."""
        login, form = await form_of(hub, request)
        path = _dataset(owner, kind, folder, name, request)
        commit = field(form, "commit", limit=200)
        ref = field(form, "ref", limit=200)
        at = path.at(commit or ref or DEFAULT_BRANCH)
        commit = (await run_in_threadpool(hub.get_commit, login.principal, at)).id  # view
        computations.start(login.principal, path, commit)
        return redirect(asset_url(path, "dataset/stats", ref=ref),
                        f"Computing the statistics of {commit[:12]}", request)

    # -- versions ----------------------------------------------------------------------------------
    @r.get(ASSET + "/dataset/versions")
    async def versions(request: Request, owner: str, kind: str, folder: str, name: str,
                       ref: str = "") -> Response:
        who = viewer(hub, request)
        path = _dataset(owner, kind, folder, name, request)
        asset = await run_in_threadpool(hub.get_asset, who, path)
        graph = await run_in_threadpool(lambda: datasets.version_graph(who, path,
                                                                       limit=GRAPH_LIMIT))
        return render(hub, request, "data_versions.html", asset=asset, ref=ref, tab="dataset/versions",
                      graph=graph, can_edit=asset.your_role in ("edit", "owner"))

    @r.post(ASSET + "/dataset/restore")
    async def restore(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        """Make a published version (or commit) the content of main (``edit``: the hub refuses
        anyone else, whatever the page showed)."""
        login, form = await form_of(hub, request)
        path = _dataset(owner, kind, folder, name, request)
        version = field(form, "version", limit=200)
        if not version:
            raise errors.InvalidReferenceError("name the version to restore", part="version",
                                               value="")
        message = field(form, "message")
        done = await run_in_threadpool(
            lambda: datasets.restore(login.principal, path, version, message=message))
        return redirect(asset_url(path, "dataset/versions"),
                        f"Restored {version} as main: commit {done.id[:12]}", request)

    # -- fragments: a file's preview, the sample diff -----------------------------------------------
    @r.get(ASSET + "/dataset/preview")
    async def preview(request: Request, owner: str, kind: str, folder: str, name: str,
                      path: str, ref: str = "") -> Response:
        who = viewer(hub, request)
        try:
            apath = _dataset(owner, kind, folder, name, request)
            head = await datasets.head(who, apath.at(ref or DEFAULT_BRANCH), path, n=PREVIEW_ROWS)
        except errors.AssetHubError as e:
            return _problem(e)
        return fragment("data_preview.html", p=head.files[0], commit=head.commit_id,
                        human_size=human_size)

    @r.get(ASSET + "/dataset/sample-diff")
    async def sample_diff(request: Request, owner: str, kind: str, folder: str, name: str,
                          base: str, head: str) -> Response:
        who = viewer(hub, request)
        try:
            apath = _dataset(owner, kind, folder, name, request)
            found: Any = await run_in_threadpool(
                lambda: stats.sample_diff(who, apath.at(base), apath.at(head)))
        except errors.AssetHubError as e:
            return _problem(e)
        return fragment("data_sample_diff.html", d=found, base=base, head=head)

    return r
