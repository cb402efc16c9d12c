"""Console pages for what a dataset knows of its samples (issue 15): statistics of a version,
the version graph with restore, a file's preview and the sample-level diff of two versions.

The same hub calls as the REST API (:class:`~assethub.hub.stats.DatasetStatistics`,
:class:`~assethub.hub.datasets.Datasets`), so the same permission checks: ``view`` to read,
``edit`` to restore. Statistics are computed on the first ask for a commit, which may take a
while: the page shows them when kept and otherwise a "Compute" button (a POST, as every change).
The preview and the sample diff are fragments the file and compare pages load (``data-poll``
of ``static/console.js``: they answer once, without a further poll, even for an error).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from assethub import errors
from assethub.console._web import asset_url, field, form_of, fragment, redirect, render, viewer
from assethub.console.render import human_size
from assethub.hub import Hub
from assethub.hub.datasets import Datasets
from assethub.hub.stats import DatasetStatistics
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef

ASSET = "/a/{owner}/{kind}/{folder}/{name}"
#: main's commits the versions page shows
GRAPH_LIMIT = 200
#: rows or lines of a file's preview
PREVIEW_ROWS = 20


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

    # -- statistics ------------------------------------------------------------------------------
    @r.get(ASSET + "/dataset/stats")
    async def statistics(request: Request, owner: str, kind: str, folder: str, name: str,
                         ref: str = "") -> Response:
        who = viewer(hub, request)
        path = _dataset(owner, kind, folder, name, request)
        asset = await run_in_threadpool(hub.get_asset, who, path)
        at = AssetRef.parse(f"{path}:{ref or DEFAULT_BRANCH}")
        commit = (await run_in_threadpool(hub.get_commit, who, at)).id
        try:
            found = await run_in_threadpool(lambda: stats.stats(who, path.at(commit), compute=False))
        except errors.NotFoundError:
            found = None
        return render(hub, request, "data_stats.html", asset=asset, ref=ref, tab="dataset/stats",
                      shown=ref or DEFAULT_BRANCH, commit=commit, stats=found,
                      human_size=human_size)

    @r.post(ASSET + "/dataset/stats")
    async def compute(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        """Compute (and keep) the statistics of a commit: anyone who may view the dataset."""
        login, form = await form_of(hub, request)
        path = _dataset(owner, kind, folder, name, request)
        commit = field(form, "commit", limit=200)
        ref = field(form, "ref", limit=200)
        at = path.at(commit or ref or DEFAULT_BRANCH)
        result = await run_in_threadpool(lambda: stats.stats(login.principal, at))
        return redirect(asset_url(path, "dataset/stats", ref=ref),
                        f"Statistics of {result.commit_id[:12]} computed in {result.seconds:.1f} s",
                        request)

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
