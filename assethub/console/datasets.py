"""Console pages: a dataset at a ref — its settings (task type, format, split), its published
versions (and publishing one), a preview of samples and the class distribution.

Everything comes from one capped listing of the ref (:data:`LIST_CAP` files; the page says when
the dataset is bigger) and a few ranged reads: thumbnails of a few images per class, the first
lines of text files or the head of a table. Nothing reads the whole dataset.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assethub import errors
from assethub.console._web import SECURITY_HEADERS, asset_url, viewer
from assethub.console._web import render as render_page
from assethub.console.render import bar_chart, human_size
from assethub.dataset_formats import SPLITS
from assethub.hub import Hub, Principal
from assethub.refs import DEFAULT_BRANCH, AssetPath, AssetRef
from assethub.storage import ObjectInfo

ASSET = "/a/{owner}/{kind}/{folder}/{name}"
#: files listed at most to count classes and pick samples
LIST_CAP = 10_000
#: thumbnails per class, classes with thumbnails, text samples
THUMBS_PER_CLASS = 4
MAX_CLASSES_SHOWN = 24
TEXT_SAMPLES = 6
HEAD_BYTES = 8192
HEAD_LINES = 15
#: the largest image served as a thumbnail
THUMB_MAX_BYTES = 4 * 2**20
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp", ".bmp": "image/bmp"}
SPLIT_ORDER = (*SPLITS, "all")
TEXT_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".ann", ".md")


def _dataset_path(owner: str, kind: str, folder: str, name: str, request: Request) -> AssetPath:
    path = AssetPath.parse(f"{owner}/{kind}/{folder}/{name}")
    if not path.is_dataset:
        raise errors.NotFoundError("page", request.url.path, "only datasets have a dataset page")
    return path


def _is_meta(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1].lower()
    return PurePosixPath(name).stem == "readme" or name.startswith("license")


def _class_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def classes_of(objects: list[ObjectInfo]) -> tuple[dict[str, list[str]], Counter[str]]:
    """The files of a ``dir`` dataset by class (``<class>/<file>`` or ``<split>/<class>/<file>``),
    and the number of examples per split."""
    by_class: dict[str, list[str]] = {}
    splits: Counter[str] = Counter()
    for o in objects:
        parts = o.path.split("/")
        if len(parts) == 3 and parts[0].lower() in SPLITS:
            split, cls = parts[0].lower(), parts[1]
        elif len(parts) == 2:
            split, cls = "all", parts[0]
        else:
            continue  # top-level files (README, metadata) and anything deeper
        by_class.setdefault(cls, []).append(o.path)
        splits[split] += 1
    return dict(sorted(by_class.items(), key=lambda kv: _class_key(kv[0]))), splits


async def _head(hub: Hub, who: Principal, ref: AssetRef, path: str) -> str:
    """The first bytes of a file as text (a ranged read)."""
    obj = await hub.open_file(who, ref, path, byte_range=f"bytes=0-{HEAD_BYTES - 1}")
    data = bytearray()
    async for chunk in obj.chunks:
        data += chunk
        if len(data) >= HEAD_BYTES:
            break
    if obj.close is not None and len(data) >= HEAD_BYTES:
        await obj.close()
    return bytes(data[:HEAD_BYTES]).decode("utf-8", errors="replace")


def _table(text: str, suffix: str) -> list[list[str]] | None:
    """The head of a CSV/TSV file as rows (the last, maybe cut, line dropped)."""
    lines = text.splitlines()[:HEAD_LINES + 1]
    if len(text) >= HEAD_BYTES and lines:
        lines = lines[:-1]
    try:
        rows = list(csv.reader(io.StringIO("\n".join(lines)),
                               delimiter="\t" if suffix == ".tsv" else ","))
    except csv.Error:
        return None
    return [r[:20] for r in rows[:HEAD_LINES]]


@dataclass(frozen=True)
class Summary:
    """What the dataset page shows of one commit (a commit never changes: kept in a small cache)."""

    files: int
    total_bytes: int
    capped: bool
    counts: tuple[tuple[str, int], ...]  # examples per class (dir format)
    splits: tuple[tuple[str, int], ...]  # examples per split (dir format)
    images: tuple[tuple[str, tuple[str, ...]], ...]  # a few image paths per class
    samples: tuple[Mapping[str, Any], ...]  # {label, path, lines, rows}


class _Summaries:
    """The last few summaries by (asset, commit, format): who may see them is checked on every
    request before this is asked."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, str, str], Summary] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> Summary | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: tuple[str, str, str], summary: Summary) -> None:
        self.items[key] = summary
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


async def summarize(hub: Hub, who: Principal, at: AssetRef, data_format: str) -> Summary:
    """Class counts and samples of a version from one capped listing and a few ranged reads."""
    objects = await run_in_threadpool(lambda: hub.list_objects(who, at, limit=LIST_CAP + 1))
    capped = len(objects) > LIST_CAP
    objects = objects[:LIST_CAP]
    counts: list[tuple[str, int]] = []
    images: list[tuple[str, tuple[str, ...]]] = []
    splits: Counter[str] = Counter()
    picks: list[tuple[str, str]] = []  # (label, path) of text files to show the head of
    if data_format == "dir":
        by_class, splits = classes_of(objects)
        counts = [(c, len(files)) for c, files in by_class.items()]
        for cls, files in list(by_class.items())[:MAX_CLASSES_SHOWN]:
            found = [f for f in files if PurePosixPath(f).suffix.lower() in IMAGE_TYPES]
            if found:
                images.append((cls, tuple(found[:THUMBS_PER_CLASS])))
        if not images:  # text classes: the first lines of one file of each of a few classes
            picks = [(c, f[0]) for c, f in by_class.items()
                     if f[0].lower().endswith(TEXT_SUFFIXES)][:TEXT_SAMPLES]
    else:
        picks = [("", o.path) for o in objects if not _is_meta(o.path)
                 and o.path.lower().endswith(TEXT_SUFFIXES)][:2]
    heads = await asyncio.gather(*(_head(hub, who, at, f) for _, f in picks))
    samples = []
    for (label, f), text in zip(picks, heads, strict=True):
        suffix = PurePosixPath(f).suffix.lower()
        rows = _table(text, suffix) if suffix in (".csv", ".tsv") and not label else None
        samples.append({"label": label, "path": f, "rows": rows,
                        "lines": text.splitlines()[:HEAD_LINES]})
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return Summary(len(objects), sum(o.size for o in objects), capped, tuple(counts),
                   tuple(sorted(splits.items(), key=lambda kv: order[kv[0]])), tuple(images),
                   tuple(samples))


def router(hub: Hub) -> APIRouter:
    r = APIRouter()
    cache = _Summaries()

    @r.get(ASSET + "/dataset")
    async def dataset(request: Request, owner: str, kind: str, folder: str, name: str,
                      ref: str = "") -> Response:
        who = viewer(hub, request)
        path = _dataset_path(owner, kind, folder, name, request)
        ref = ref or DEFAULT_BRANCH
        at = AssetRef.parse(f"{path}:{ref}")
        asset = await run_in_threadpool(hub.get_asset, who, path)  # may they see it at all
        commit = (await run_in_threadpool(hub.get_commit, who, at)).id
        meta = asset.dataset
        data_format = (meta.data_format if meta else None) or "dir"
        key = (str(path), commit, data_format)
        summary = cache.get(key)
        if summary is None:
            summary = await summarize(hub, who, path.at(commit), data_format)
            cache.put(key, summary)
        thumbs = [(cls, [(f, asset_url(path, "dataset/thumb", ref=commit, file=f)) for f in files])
                  for cls, files in summary.images]
        chart = (bar_chart([(c, float(n)) for c, n in summary.counts], title="Examples per class")
                 if summary.counts else None)
        return render_page(
            hub, request, "dataset_view.html", asset=asset, ref=ref, commit=commit, tab="dataset",
            meta=meta, data_format=data_format, task=(meta.task_type if meta else None) or "",
            summary=summary, cap=LIST_CAP, human_size=human_size, chart=chart, thumbs=thumbs,
            splits_text=", ".join(f"{s}: {n:,}" for s, n in summary.splits),
            published=list(asset.published), can_edit=asset.your_role in ("edit", "owner"))

    @r.get(ASSET + "/dataset/thumb")
    async def thumbnail(request: Request, owner: str, kind: str, folder: str, name: str,
                        file: str, ref: str = "") -> Response:
        """An image of the dataset for the preview (images only, at most THUMB_MAX_BYTES)."""
        who = viewer(hub, request)
        asset = _dataset_path(owner, kind, folder, name, request)
        media = IMAGE_TYPES.get(PurePosixPath(file).suffix.lower())
        if media is None:
            raise errors.InvalidReferenceError("only images are shown as thumbnails", part="file",
                                               value=file[:40])
        at = AssetRef.parse(f"{asset}:{ref or DEFAULT_BRANCH}")
        obj = await hub.open_file(who, at, file)
        if obj.length > THUMB_MAX_BYTES:
            if obj.close is not None:
                await obj.close()
            raise errors.PayloadTooLargeError(f"{file} is over {human_size(THUMB_MAX_BYTES)}: "
                                              "too large for a thumbnail")
        headers = {**SECURITY_HEADERS, "Content-Length": str(obj.length),
                   "Content-Disposition": "inline"}
        return StreamingResponse(obj.chunks, media_type=media, headers=headers)

    return r
