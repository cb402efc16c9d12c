"""Dataset archives and layouts: safe zip extraction and a check per dataset format.

:func:`safe_extract` refuses a hostile archive (path traversal, symlinks, zip bombs, encrypted
entries) before writing anything, and removes what it wrote if an entry turns out to hold more
than its header declares. :func:`validate_layout` checks the extracted tree against one of
:data:`FORMATS` and summarises it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from assethub.errors import InvalidDatasetError, InvalidReferenceError
from assethub.refs import validate_object_path
from assethub.wire import FORMATS, TASK_TYPES, DatasetSummary  # defined there, re-exported here

__all__ = ["FORMATS", "SPLITS", "TASK_TYPES", "DatasetSummary", "safe_extract", "validate_layout"]

SPLITS = ("train", "val", "validation", "test")

_BOMB_MIN_BYTES = 2**20  # the ratio check applies to entries bigger than this
_CHUNK = 2**20
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_BRAT_CONF = {"annotation.conf", "visual.conf", "tools.conf", "kb_shortcuts.conf"}


def _listing(items: list[str]) -> str:
    return ", ".join(items[:20]) + (f" (+{len(items) - 20} more)" if len(items) > 20 else "")


# -- safe extraction ---------------------------------------------------------------------------
def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's checked path (a directory's without its trailing '/')."""
    raw = info.orig_filename  # zipfile cuts .filename at a NUL; the original keeps it
    problems = [
        (raw.startswith(("/", "\\")), "absolute path"),
        (len(raw) >= 2 and raw[1] == ":" and raw[0].isascii() and raw[0].isalpha(), "drive letter"),
        ("\\" in raw or "\x00" in raw, "backslash or NUL in the name"),
        (".." in raw.split("/"), "'..' in the path"),
        (stat.S_ISLNK(info.external_attr >> 16), "symbolic link"),
    ]
    why = next((why for bad, why in problems if bad), "")
    try:
        if not why:
            return validate_object_path(raw.removesuffix("/") if info.is_dir() else raw)
    except InvalidReferenceError as e:
        why = str(e)
    raise InvalidDatasetError(f"unsafe archive entry: {why}", path=raw)


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "__MACOSX" or parts[-1] == ".DS_Store"


def _plan(infos: list[zipfile.ZipInfo], max_total_bytes: int, max_files: int, max_ratio: float,
          strip_top_folder: bool) -> list[tuple[zipfile.ZipInfo, str]]:
    """Check every entry; return the files to write with their destination paths."""
    if len(infos) > max_files:
        raise InvalidDatasetError(f"archive holds {len(infos)} entries, over the limit of {max_files}")
    seen: set[str] = set()
    files: list[zipfile.ZipInfo] = []
    total = 0
    for info in infos:
        name = _entry_name(info)
        if name in seen:
            raise InvalidDatasetError("duplicate archive entry", path=name)
        seen.add(name)
        if info.is_dir() or _is_junk(name):
            continue
        if info.flag_bits & 0x1:
            raise InvalidDatasetError("encrypted archive entry", path=name)
        if info.compress_type not in _COMPRESSIONS:
            raise InvalidDatasetError(f"unsupported compression method {info.compress_type}", path=name)
        if info.file_size > _BOMB_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise InvalidDatasetError(f"compression ratio over {max_ratio:g} (zip bomb?)", path=name)
        total += info.file_size
        files.append(info)
    if total > max_total_bytes:
        raise InvalidDatasetError(f"archive unpacks to {total} bytes, over the limit of {max_total_bytes}")
    if not files:
        raise InvalidDatasetError("archive holds no files")
    names = {i.filename for i in files}
    for n in names:
        parts = n.split("/")
        for k in range(1, len(parts)):
            if "/".join(parts[:k]) in names:
                raise InvalidDatasetError("archive entry is both a file and a folder",
                                          path="/".join(parts[:k]))
    tops = {n.split("/", 1)[0] for n in names}
    # A zipped folder holds one top folder: strip it, unless it is a split (train/...) of the data.
    strip = (strip_top_folder and len(tops) == 1 and all("/" in n for n in names)
             and tops.pop() not in SPLITS)
    return [(i, i.filename.split("/", 1)[1] if strip else i.filename) for i in files]


def _clear(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def safe_extract(zip_path: Path, dest: Path, *, max_total_bytes: int = 10 * 2**30, max_files: int = 1_000_000,
                 max_ratio: float = 200.0, strip_top_folder: bool = True) -> list[str]:
    """Extract ``zip_path`` into ``dest`` (new or empty); return the relative POSIX paths written.

    Raises InvalidDatasetError, with nothing left in ``dest``, when the archive is refused.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise InvalidDatasetError("not a zip archive") from None
    with zf:
        plan = _plan(zf.infolist(), max_total_bytes, max_files, max_ratio, strip_top_folder)
        created = not dest.exists()
        if not created and (not dest.is_dir() or any(dest.iterdir())):
            raise FileExistsError(f"extraction target {dest} must be a new or empty directory")
        dest.mkdir(parents=True, exist_ok=True)
        written = 0
        current = ""
        try:
            for info, rel in plan:
                current = info.filename
                target = dest.joinpath(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    size = 0
                    while chunk := src.read(_CHUNK):
                        size += len(chunk)
                        written += len(chunk)
                        if size > info.file_size or written > max_total_bytes:
                            raise InvalidDatasetError("entry holds more data than its header declares",
                                                      path=current)
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            _clear(dest, created)
            raise InvalidDatasetError(f"corrupt archive entry: {e}", path=current) from None
        except FileExistsError:  # e.g. 'A.txt' and 'a.txt' on a case-insensitive file system
            _clear(dest, created)
            raise InvalidDatasetError("two archive entries map to the same file", path=current) from None
        except BaseException:
            _clear(dest, created)
            raise
    return [rel for _, rel in plan]


# -- layouts -----------------------------------------------------------------------------------
def _scan(root: Path) -> tuple[dict[str, int], set[str]]:
    """Sizes of the files under ``root`` and its folders, by relative POSIX path."""
    files: dict[str, int] = {}
    dirs: set[str] = set()
    for here, dirnames, filenames in os.walk(root):
        base = Path(here).relative_to(root).as_posix()
        for name in dirnames + filenames:
            p = Path(here, name)
            rel = name if base == "." else f"{base}/{name}"
            if p.is_symlink():
                raise InvalidDatasetError("symbolic links are not allowed in a dataset", path=rel)
            if name in dirnames:
                dirs.add(rel)
            else:
                files[rel] = p.stat().st_size
    return files, dirs


def _is_meta(rel: str, *, json_ok: bool = False) -> bool:
    name = rel.rsplit("/", 1)[-1].lower()
    return (PurePosixPath(name).stem == "readme" or name.startswith("license")
            or (json_ok and name.endswith(".json")))


def _split_of(rel: str) -> str:
    for part in (rel.split("/", 1)[0], PurePosixPath(rel).stem):
        if part.lower() in SPLITS:
            return part.lower()
    return "all"


def _check_dir(files: dict[str, int], dirs: set[str]) -> DatasetSummary:
    for f in files:
        if "/" not in f and not _is_meta(f, json_ok=True):
            raise InvalidDatasetError("only README.md, LICENSE* and *.json may be at the top level; "
                                      "put data files in <class>/ or <split>/<class>/ folders", path=f)
    tops = {d for d in dirs if "/" not in d}
    split_tops = tops & set(SPLITS)
    if split_tops and split_tops != tops:
        raise InvalidDatasetError("split folders mixed with class folders",
                                  path=_listing(sorted(tops - split_tops)))
    depth = 2 if split_tops else 1
    for d in sorted(dirs):
        if d.count("/") + 1 > depth:
            raise InvalidDatasetError("folder nested too deep: expected <class>/<file> or "
                                      "<split>/<class>/<file>", path=d)
    counts = {d: 0 for d in dirs if d.count("/") + 1 == depth}
    for f in files:
        if "/" in f:
            if f.count("/") != depth:
                raise InvalidDatasetError("file is not inside a class folder", path=f)
            counts[f.rsplit("/", 1)[0]] += 1
    empty = sorted(d for d, n in counts.items() if n == 0)
    if empty:
        raise InvalidDatasetError("empty class folder(s)", path=_listing(empty))
    no_class = sorted(split_tops - {d.split("/", 1)[0] for d in counts})
    if no_class:
        raise InvalidDatasetError("split folder(s) without class folders", path=_listing(no_class))
    if not counts:
        raise InvalidDatasetError("no class folders: expected <class>/<file> or <split>/<class>/<file>")
    splits = tuple(s for s in SPLITS if s in split_tops)
    per_split = ({s: sum(n for d, n in counts.items() if d.split("/", 1)[0] == s) for s in splits}
                 if splits else {"all": sum(counts.values())})
    classes = tuple(sorted({d.rsplit("/", 1)[-1] for d in counts}))
    return DatasetSummary("dir", len(files), sum(files.values()), classes, splits, per_split)


def _json_records(path: Path, rel: str) -> int:
    lineno = 0
    try:
        with path.open(encoding="utf-8-sig") as fh:
            if rel.endswith(".json"):
                doc = json.load(fh)
                return len(doc) if isinstance(doc, list) else 1
            n = 0
            for lineno, line in enumerate(fh, 1):  # noqa: B007 - lineno is read in the handler
                if line.strip():
                    json.loads(line)
                    n += 1
    except json.JSONDecodeError as e:
        raise InvalidDatasetError(f"invalid JSON at line {lineno or e.lineno}: {e.msg}", path=rel) from None
    except UnicodeDecodeError:
        raise InvalidDatasetError("not UTF-8 text", path=rel) from None
    if n == 0:
        raise InvalidDatasetError("JSON Lines file holds no records", path=rel)
    return n


def _check_json(root: Path, files: dict[str, int]) -> dict[str, int]:
    data = sorted(f for f in files if not _is_meta(f))
    for f in data:
        if not f.endswith((".json", ".jsonl")):
            raise InvalidDatasetError("not a .json or .jsonl file", path=f)
    if not data:
        raise InvalidDatasetError("no .json or .jsonl file")
    per_split: dict[str, int] = {}
    for f in data:
        per_split[_split_of(f)] = per_split.get(_split_of(f), 0) + _json_records(root / f, f)
    return per_split


def _check_single_text(root: Path, files: dict[str, int]) -> dict[str, int]:
    data = sorted(f for f in files if not _is_meta(f))
    if len(data) != 1 or not data[0].endswith((".txt", ".csv", ".tsv")):
        raise InvalidDatasetError(f"expected exactly one .txt, .csv or .tsv data file, found {len(data)}",
                                  path=_listing(data))
    lines = 0
    with (root / data[0]).open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidDatasetError(f"not UTF-8 text at line {lineno}", path=data[0]) from None
            lines += bool(line.strip())
    if not lines:
        raise InvalidDatasetError("data file is empty", path=data[0])
    return {"all": lines}


def _check_brat(files: dict[str, int]) -> dict[str, int]:
    texts: set[str] = set()
    anns: set[str] = set()
    for f in files:
        stem, _, ext = f.rpartition(".")
        if ext in ("txt", "ann"):
            (texts if ext == "txt" else anns).add(stem)
        elif f.rsplit("/", 1)[-1] not in _BRAT_CONF and not _is_meta(f):
            raise InvalidDatasetError("not a brat file (.txt, .ann or annotation.conf)", path=f)
    unmatched = sorted([f"{s}.txt" for s in texts - anns if not _is_meta(f"{s}.txt")]
                       + [f"{s}.ann" for s in anns - texts])
    if unmatched:
        raise InvalidDatasetError(f"{len(unmatched)} file(s) without their .txt/.ann pair",
                                  path=_listing(unmatched))
    if not texts & anns:
        raise InvalidDatasetError("no .txt/.ann document pairs")
    return {"all": len(texts & anns)}


def validate_layout(root: Path, data_format: str) -> DatasetSummary:
    """Check the tree under ``root`` against ``data_format``; raise InvalidDatasetError if wrong."""
    if data_format not in FORMATS:
        raise InvalidDatasetError(f"unknown dataset format {data_format!r}; use one of: {', '.join(FORMATS)}")
    if not root.is_dir():
        raise InvalidDatasetError("dataset root is not a directory", path=str(root))
    files, dirs = _scan(root)
    if data_format == "dir":
        return _check_dir(files, dirs)
    if data_format == "json":
        per_split = _check_json(root, files)
    elif data_format == "single_text":
        per_split = _check_single_text(root, files)
    else:
        per_split = _check_brat(files)
    return DatasetSummary(data_format, len(files), sum(files.values()), examples_per_split=per_split)
