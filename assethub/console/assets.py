"""Console pages: an asset's overview, its files at a ref (one directory level, paged), a file's
view and raw bytes, history, compare, and branches & tags.

Every page reads through the hub with the person looking (:func:`viewer`): a hidden asset
answers exactly like a missing one. Changes are POSTs through :func:`form_of` (CSRF, same
origin); a refused change shows its reason next to the form, with what was typed kept.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from markupsafe import Markup

from assethub import errors
from assethub.console import render as md
from assethub.console._web import (
    SECURITY_HEADERS,
    asset_url,
    env,
    field,
    folder_url,
    form_of,
    redirect,
    render,
    viewer,
)
from assethub.hub import AssetView, Hub, Principal
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef, FolderPath, validate_object_path

#: a directory page's entries; a version of any size is listed a page at a time
PAGE = 200
HISTORY_PAGE = 50
#: branches and tags the ref picker lists (each; the refs page lists all)
PICKER_REFS = 100
#: what a file view reads of a file (the rest is behind "download")
HEAD_BYTES = 1 << 20
#: compare: line diffs only for this many text files of at most this size
DIFF_FILES = 10
DIFF_BYTES = 256 * 1024
DIFF_ROWS = 1000
#: compare: changed paths listed (all are counted)
CHANGES_SHOWN = 500

IMAGES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
          "webp": "image/webp"}
#: served inline as text/plain (never as HTML, whatever they hold)
TEXTS = {"txt", "md", "markdown", "csv", "tsv", "json", "jsonl", "yaml", "yml", "toml", "ini",
         "cfg", "log", "py", "sh", "r", "sql", "xml", "ann", "conll", "rst", "tex"}
#: errors shown next to the form that caused them (the rest get the error page)
FORM_ERRORS = (errors.InvalidReferenceError, errors.AlreadyExistsError, errors.NotAllowedError,
               errors.RefNotFoundError, errors.MergeConflictError)
RAW_CSP = "sandbox; default-src 'none'"


def _ext(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def file_url(asset: Any, page: str, ref: str = "", path: str = "", **more: Any) -> str:
    """The URL of an asset page about a file or directory (``asset_url``'s own ``path`` is the
    asset)."""
    query = {k: v for k, v in {"ref": ref, "path": path, **more}.items() if v not in (None, "")}
    return _page_url(asset, page) + ("?" + urlencode(query) if query else "")


@lru_cache(maxsize=256)
def _page_url(asset: Any, page: str) -> str:
    return asset_url(asset, page)


def resolve_base(asset: AssetPath, ref: str) -> str:
    """The base of a README's relative links at ``ref``: ``.../resolve/<ref>/`` (see the route)."""
    return f"{_page_url(asset, 'resolve')}/{quote(ref, safe='')}/"


def crumbs(path: str) -> list[tuple[str, str]]:
    """(name, prefix up to it) for each part of a directory or file path."""
    parts = [p for p in path.split("/") if p]
    return [(p, "/".join(parts[:i + 1]) + "/") for i, p in enumerate(parts)]


def stamp(value: datetime) -> Markup:
    """``render.time_tag`` for the long lists of a page (a directory, a history): the same
    element, without escaping what a datetime's own digits cannot hold (twice as fast)."""
    iso = value.astimezone(UTC).isoformat()
    return Markup(f'<time datetime="{iso}" title="{iso[:19].replace("T", " ")} UTC">'
                  f'{md.human_time(value)}</time>')


env.globals.update(file_url=file_url, crumbs=crumbs, human_size=md.human_size,
                   time_tag=md.time_tag, stamp=stamp)


def asset_path(owner: str, kind: str, folder: str, name: str) -> AssetPath:
    return AssetPath.parse(f"{owner}/{kind}/{folder}/{name}")


def _ref(path: AssetPath, ref: str) -> AssetRef:
    if len(ref) > 200:
        raise errors.InvalidReferenceError("a ref is at most 200 characters", part="ref",
                                           value=ref[:20])
    return path.at(ref or DEFAULT_BRANCH)


def _file(path: str) -> str:
    if len(path) > 1024:
        raise errors.InvalidReferenceError("a path is at most 1024 characters", part="path",
                                           value=path[:20])
    return validate_object_path(path)


def _dir(path: str) -> str:
    """A directory prefix: '' (the top) or 'a/b/'."""
    path = path.strip("/")
    if not path:
        return ""
    return _file(path) + "/"


async def read_head(hub: Hub, who: Principal, ref: AssetRef, path: str,
                    limit: int = HEAD_BYTES) -> tuple[bytes, int, bool]:
    """(the first ``limit`` bytes of a file, its length, whether it is longer)."""
    obj = await hub.open_file(who, ref, path)
    out = bytearray()
    try:
        async for chunk in obj.chunks:
            out += chunk
            if len(out) > limit:
                break
    finally:
        if obj.close is not None:
            await obj.close()
    return bytes(out[:limit]), obj.length, len(out) > limit or obj.length > limit


def as_text(data: bytes) -> str | None:
    """The bytes as text, or None for what looks binary."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start >= len(data) - 3:  # cut in the middle of a character at the 1 MiB mark
            return data[:e.start].decode("utf-8", errors="replace")
        return None


def table_of(text: str, ext: str, rows: int = 50) -> tuple[list[str], list[list[str]]] | None:
    """The head of a CSV/TSV/JSON(L) file as (columns, rows), or None when it is not a table."""
    if ext in ("csv", "tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if ext == "tsv" else ",")
        try:
            lines = [r for _, r in zip(range(rows + 1), reader, strict=False)]
        except csv.Error:
            return None
        if not lines:
            return None
        return lines[0], lines[1:]
    records: list[Any] = []
    if ext == "jsonl":
        for line in text.splitlines()[:rows]:
            try:
                records.append(json.loads(line))
            except ValueError:
                return None
    elif ext == "json":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        records = data[:rows] if isinstance(data, list) else []
    if not records or not all(isinstance(r, dict) for r in records):
        return None
    columns: list[str] = []
    for r in records:
        columns += [str(k) for k in r if str(k) not in columns]
    columns = columns[:50]
    return columns, [[_cell(r.get(c)) for c in columns] for r in records]


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _group(entries: list[Any]) -> list[tuple[str, Counter[str], list[Any]]]:
    """Changed paths grouped by their top directory, with counts of each kind of change."""
    groups: dict[str, list[Any]] = {}
    for e in entries:
        top = e.path.split("/", 1)[0] + "/" if "/" in e.path else ""
        groups.setdefault(top, []).append(e)
    return [(top, Counter(e.change for e in items), items) for top, items in sorted(groups.items())]


def router(hub: Hub) -> APIRouter:
    r = APIRouter()
    A = "/a/{owner}/{kind}/{folder}/{name}"

    async def picker(who: Principal, path: AssetPath) -> dict[str, Any]:
        """What the ref picker lists: branches, tags, recent commits of main (read together)."""
        async def recent() -> list[Any]:
            try:
                return await run_in_threadpool(hub.log, who, path.at(DEFAULT_BRANCH), limit=20)
            except errors.RefNotFoundError:
                return []

        branches, tags, commits = await asyncio.gather(
            run_in_threadpool(hub.list_branches, who, path),
            run_in_threadpool(hub.list_tags, who, path), recent())
        return {"branches": branches[:PICKER_REFS], "tags": tags[:PICKER_REFS], "recent": commits,
                "cut": len(branches) > PICKER_REFS or len(tags) > PICKER_REFS}

    def may_edit(asset: AssetView) -> bool:
        return asset.your_role in ("edit", "owner")

    # -- overview ------------------------------------------------------------------------------
    @r.get(A)
    async def overview(request: Request, owner: str, kind: str, folder: str, name: str,
                       ref: str = "") -> Response:
        who = viewer(hub, request)
        path = asset_path(owner, kind, folder, name)
        asset = await run_in_threadpool(hub.get_asset, who, path)
        at = _ref(path, ref)

        async def latest() -> Any:
            try:
                return await run_in_threadpool(hub.get_commit, who, at)
            except errors.RefNotFoundError:
                if ref:
                    raise
                return None

        async def card() -> tuple[str, str]:
            for candidate in ("README.md", "readme.md", "README"):
                try:
                    data, _, _ = await read_head(hub, who, at, candidate, 256 * 1024)
                except (errors.ObjectNotFoundError, errors.RefNotFoundError):
                    continue
                return as_text(data) or "", candidate
            return asset.readme, ""

        commit, refs, (readme_text, readme_file) = await asyncio.gather(
            latest(), picker(who, path), card())
        front, _ = md.split_front_matter(readme_text)
        readme = md.markdown(readme_text, link_base=resolve_base(path, at.ref)) \
            if readme_text.strip() else Markup("")
        return render(hub, request, "asset_overview.html", asset=asset, ref=ref, tab="",
                      at=at.ref, commit=commit, readme=readme, readme_file=readme_file,
                      front=front, refs=refs, page_name="", file_path="",
                      may_edit=may_edit(asset))

    # -- files ---------------------------------------------------------------------------------
    @r.get(A + "/files")
    async def files(request: Request, owner: str, kind: str, folder: str, name: str,
                    ref: str = "", path: str = "", after: str = "", limit: int = PAGE) -> Response:
        who = viewer(hub, request)
        apath = asset_path(owner, kind, folder, name)
        asset = await run_in_threadpool(hub.get_asset, who, apath)
        at = _ref(apath, ref)
        prefix = _dir(path)
        listing, refs = await asyncio.gather(
            run_in_threadpool(hub.list_directory, who, at, prefix=prefix, after=after,
                              limit=max(1, min(limit, 1000))),
            picker(who, apath))
        if prefix and not listing.dirs and not listing.files and not after:
            raise errors.ObjectNotFoundError(str(at), prefix)
        return render(hub, request, "asset_files.html", asset=asset, ref=ref, tab="files",
                      at=at.ref, listing=listing, prefix=prefix, after=after,
                      limit="" if limit == PAGE else limit,
                      refs=refs, page_name="files", file_path=prefix,
                      may_edit=may_edit(asset))

    # -- one file --------------------------------------------------------------------------------
    @r.get(A + "/blob")
    async def blob(request: Request, owner: str, kind: str, folder: str, name: str,
                   path: str, ref: str = "") -> Response:
        who = viewer(hub, request)
        apath = asset_path(owner, kind, folder, name)
        asset = await run_in_threadpool(hub.get_asset, who, apath)
        at = _ref(apath, ref)
        file = _file(path)

        def reads() -> tuple[Any, Any]:
            info = hub.stat(who, at, file)
            last = hub.log(who, at, limit=1, path=file)
            return info, (last[0] if last else None)

        info, last = await run_in_threadpool(reads)
        ext = _ext(file)
        view: dict[str, Any] = {"kind": "binary"}
        if ext in IMAGES:
            view = {"kind": "image"}
        elif info.size == 0:
            view = {"kind": "text", "text": "", "truncated": False}
        else:
            data, _, truncated = await read_head(hub, who, at, file)
            text = as_text(data)
            if text is not None:
                view = {"kind": "text", "text": text, "truncated": truncated}
                if ext in ("md", "markdown") and not truncated:
                    folder_of = file.rsplit("/", 1)[0] + "/" if "/" in file else ""
                    html = md.markdown(text, link_base=resolve_base(apath, at.ref) + folder_of)
                    view = {"kind": "markdown", "html": html, "text": text}
                elif ext in ("csv", "tsv", "json", "jsonl"):
                    table = table_of(text, ext)
                    if table is not None:
                        view = {"kind": "table", "columns": table[0], "rows": table[1],
                                "text": text, "truncated": truncated}
        return render(hub, request, "asset_blob.html", asset=asset, ref=ref, tab="files",
                      at=at.ref, file=file, info=info, last=last, view=view,
                      dir=file.rsplit("/", 1)[0] + "/" if "/" in file else "")

    @r.get(A + "/raw")
    async def raw(request: Request, owner: str, kind: str, folder: str, name: str, path: str,
                  ref: str = "", download: str = "") -> Response:
        """A file's bytes, served so that nothing in it runs on this origin: images and text
        inline (text always as text/plain), everything else as an attachment; a sandboxing
        CSP and nosniff on every answer."""
        who = viewer(hub, request)
        apath = asset_path(owner, kind, folder, name)
        at = _ref(apath, ref)
        file = _file(path)
        obj = await hub.open_file(who, at, file)
        ext = _ext(file)
        filename = quote(file.rsplit("/", 1)[-1])
        if ext in IMAGES:
            media, inline = IMAGES[ext], not download
        elif ext in TEXTS:
            media, inline = "text/plain; charset=utf-8", not download
        else:
            media, inline = "application/octet-stream", False
        headers = {
            "Content-Length": str(obj.length),
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; "
                                   f"filename*=UTF-8''{filename}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": RAW_CSP,
            "Cross-Origin-Resource-Policy": "same-origin",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
        if obj.etag:
            headers["ETag"] = obj.etag
        return StreamingResponse(obj.chunks, headers=headers, media_type=media)

    @r.get(A + "/resolve/{at}/{file:path}")
    def resolve(request: Request, owner: str, kind: str, folder: str, name: str, at: str,
                file: str) -> Response:
        """Where a README's relative link or image points: an image's bytes, any other file's
        view (a redirect; the pages it leads to check who may see them)."""
        apath = asset_path(owner, kind, folder, name)
        ref, target = _ref(apath, at).ref, _file(file)
        page = "raw" if _ext(target) in IMAGES else "blob"
        return RedirectResponse(file_url(apath, page, ref=ref, path=target), status_code=302,
                                headers=SECURITY_HEADERS)

    # -- history ---------------------------------------------------------------------------------
    @r.get(A + "/history")
    async def history(request: Request, owner: str, kind: str, folder: str, name: str,
                      ref: str = "", after: str = "", path: str = "",
                      limit: int = HISTORY_PAGE) -> Response:
        who = viewer(hub, request)
        apath = asset_path(owner, kind, folder, name)
        asset = await run_in_threadpool(hub.get_asset, who, apath)
        at = _ref(apath, ref)
        file = path.lstrip("/")
        if file:
            _file(file.rstrip("/"))  # a file, or a directory ("d/": what lies under it)
        size = max(1, min(limit, 500))
        commits, refs = await asyncio.gather(
            run_in_threadpool(hub.log, who, at, limit=size + 1, after=after, path=file or None),
            picker(who, apath))
        more = commits[size - 1].id if len(commits) > size else ""
        return render(hub, request, "asset_history.html", asset=asset, ref=ref, tab="history",
                      at=at.ref, commits=commits[:size], more=more, after=after,
                      limit="" if size == HISTORY_PAGE else size,
                      file=file, refs=refs, page_name="history", file_path="")

    # -- compare ---------------------------------------------------------------------------------
    @r.get(A + "/compare")
    async def compare(request: Request, owner: str, kind: str, folder: str, name: str,
                      base: str = "", head: str = "", ref: str = "") -> Response:
        who = viewer(hub, request)
        apath = asset_path(owner, kind, folder, name)
        asset = await run_in_threadpool(hub.get_asset, who, apath)
        context: dict[str, Any] = {"asset": asset, "ref": ref, "tab": "compare",
                                   "base": base, "head": head, "entries": None,
                                   "may_edit": may_edit(asset)}
        if not (base and head):
            context["refs"] = await picker(who, apath)
            return render(hub, request, "asset_compare.html", **context)
        left, right = _ref(apath, base), _ref(apath, head)

        def reads() -> tuple[Any, Any, list[Any]]:
            lc, rc = hub.get_commit(who, left), hub.get_commit(who, right)
            return lc, rc, ([] if lc.id == rc.id else hub.diff(who, left, right))

        (lc, rc, entries), context["refs"] = await asyncio.gather(run_in_threadpool(reads),
                                                                  picker(who, apath))
        diffs: dict[str, Markup] = {}
        small = [e for e in entries if e.change in ("added", "removed", "changed")
                 and _ext(e.path) in TEXTS and (e.size or 0) <= DIFF_BYTES][:DIFF_FILES]

        async def side(at: AssetRef, p: str) -> str | None:
            try:
                data, _, truncated = await read_head(hub, who, at, p, DIFF_BYTES)
            except errors.ObjectNotFoundError:
                return ""
            return None if truncated else as_text(data)

        async def one(e: Any) -> None:
            old = "" if e.change == "added" else await side(left, e.path)
            new = "" if e.change == "removed" else await side(right, e.path)
            if old is not None and new is not None:
                diffs[e.path] = md.diff_lines(old, new, max_lines=DIFF_ROWS)

        await asyncio.gather(*(one(e) for e in small))
        counts = Counter(e.change for e in entries)
        context.update(entries=entries, groups=_group(entries[:CHANGES_SHOWN]), shown=CHANGES_SHOWN,
                       diffs=diffs, counts=counts, base_commit=lc, head_commit=rc,
                       same=lc.id == rc.id)
        return render(hub, request, "asset_compare.html", **context)

    # -- branches and tags -----------------------------------------------------------------------
    def refs_page(request: Request, path: AssetPath, status: int = 200, error: str = "",
                  form: Mapping[str, Any] | None = None) -> Response:
        who = viewer(hub, request)
        asset = hub.get_asset(who, path)
        branches, tags = hub.list_branches(who, path), hub.list_tags(who, path)
        return render(hub, request, "asset_refs.html", status=status, asset=asset, ref="",
                      tab="refs", branches=branches, tags=tags, error=error,
                      form=dict(form or {}), may_edit=may_edit(asset),
                      published={t for t, _ in asset.published})

    @r.get(A + "/refs")
    def refs(request: Request, owner: str, kind: str, folder: str, name: str) -> Response:
        return refs_page(request, asset_path(owner, kind, folder, name))

    async def change(request: Request, path: AssetPath, action: Any, done: str,
                     back: str = "refs") -> Response:
        login, form = await form_of(hub, request)
        try:
            message = await run_in_threadpool(action, login.principal, form)
        except FORM_ERRORS as e:
            status, _ = errors.to_wire(e)
            if back != "refs":
                raise
            return refs_page(request, path, status=status, error=str(e), form=form)
        return redirect(asset_url(path, back) if back else done, message or done, request)

    @r.post(A + "/branches")
    async def create_branch(request: Request, owner: str, kind: str, folder: str,
                            name: str) -> Response:
        path = asset_path(owner, kind, folder, name)

        def act(who: Principal, form: Mapping[str, Any]) -> str:
            branch = field(form, "name", limit=128)
            source = field(form, "source", DEFAULT_BRANCH, limit=200) or DEFAULT_BRANCH
            hub.create_branch(who, path, branch, source=source)
            return f"Branch {branch} created from {source}"

        return await change(request, path, act, "")

    @r.post(A + "/branches/delete")
    async def delete_branch(request: Request, owner: str, kind: str, folder: str,
                            name: str) -> Response:
        path = asset_path(owner, kind, folder, name)

        def act(who: Principal, form: Mapping[str, Any]) -> str:
            branch = field(form, "name", limit=128)
            hub.delete_branch(who, path, branch)
            return f"Branch {branch} deleted"

        return await change(request, path, act, "")

    @r.post(A + "/tags")
    async def create_tag(request: Request, owner: str, kind: str, folder: str,
                         name: str) -> Response:
        path = asset_path(owner, kind, folder, name)

        def act(who: Principal, form: Mapping[str, Any]) -> str:
            tag = field(form, "name", limit=128)
            at = field(form, "ref", DEFAULT_BRANCH, limit=200) or DEFAULT_BRANCH
            hub.create_tag(who, path, tag, ref=at)
            return f"Tag {tag} created at {at}"

        return await change(request, path, act, "")

    @r.post(A + "/tags/delete")
    async def delete_tag(request: Request, owner: str, kind: str, folder: str,
                         name: str) -> Response:
        path = asset_path(owner, kind, folder, name)

        def act(who: Principal, form: Mapping[str, Any]) -> str:
            tag = field(form, "name", limit=128)
            hub.delete_tag(who, path, tag)
            return f"Tag {tag} deleted"

        return await change(request, path, act, "")

    @r.post(A + "/delete")
    async def delete_asset(request: Request, owner: str, kind: str, folder: str,
                           name: str) -> Response:
        path = asset_path(owner, kind, folder, name)
        login, form = await form_of(hub, request)
        who = login.principal
        try:
            if field(form, "confirm", limit=200) != path.name:
                hub.check(who, path, "edit")  # a viewer hears "not allowed", not "type the name"
                raise errors.InvalidReferenceError(
                    f"type the asset's name ({path.name}) to delete it", part="confirm",
                    value=field(form, "confirm", limit=200)[:40])
            await run_in_threadpool(hub.delete_asset, who, path)
        except FORM_ERRORS as e:
            status, _ = errors.to_wire(e)
            return refs_page(request, path, status=status, error=str(e), form=form)
        return redirect(folder_url(FolderPath(path.owner, path.kind, path.folder)),
                        f"Asset {path} deleted", request)

    return r
