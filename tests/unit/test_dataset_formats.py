"""assethub.dataset_formats: safe zip extraction and the layout check of each dataset format."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from assethub.dataset_formats import FORMATS, TASK_TYPES, DatasetSummary, safe_extract, validate_layout
from assethub.errors import InvalidDatasetError


def make_zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def patch_headers(path: Path, name: str, **fields: int) -> None:
    """Overwrite header fields of entry ``name`` in both its local and central directory header."""
    blob = bytearray(path.read_bytes())
    offsets = {"local": {"flags": 6, "size": 22}, "central": {"flags": 8, "size": 24}}
    for kind, sig, name_at in (("local", b"PK\x03\x04", 30), ("central", b"PK\x01\x02", 46)):
        at = blob.find(sig)
        while at >= 0:
            if blob[at + name_at:at + name_at + len(name)] == name.encode():
                for field, value in fields.items():
                    fmt = "<H" if field == "flags" else "<I"
                    struct.pack_into(fmt, blob, at + offsets[kind][field], value)
            at = blob.find(sig, at + 1)
    path.write_bytes(bytes(blob))


def tree(root: Path, files: Mapping[str, bytes | str]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


# -- safe_extract: refusals --------------------------------------------------------------------
def _symlink(zp: Path) -> None:
    info = zipfile.ZipInfo("data/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("data/ok.txt", b"ok")
        zf.writestr(info, "/etc/passwd")


def _nul(zp: Path) -> None:  # zipfile cuts names at NUL when writing, so patch the bytes in
    make_zip(zp, {"aXb.txt": b"x"})
    zp.write_bytes(zp.read_bytes().replace(b"aXb.txt", b"a\x00b.txt"))


def _duplicate(zp: Path) -> None:
    with pytest.warns(UserWarning), zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("a.txt", b"1")
        zf.writestr("a.txt", b"2")


def _encrypted(zp: Path) -> None:
    make_zip(zp, {"ok.txt": b"ok", "secret.txt": b"x" * 100})
    patch_headers(zp, "secret.txt", flags=0x1)


REFUSALS: dict[str, tuple[Callable[[Path], object], str, str, dict[str, int]]] = {
    "zip-slip": (lambda zp: make_zip(zp, {"ok.txt": b"1", "../evil": b"x"}), "..", "../evil", {}),
    "nested-slip": (lambda zp: make_zip(zp, {"a/../../evil": b"x"}), "..", "a/../../evil", {}),
    "absolute": (lambda zp: make_zip(zp, {"ok.txt": b"1", "/etc/x": b"x"}), "absolute", "/etc/x", {}),
    "drive": (lambda zp: make_zip(zp, {"C:/x.txt": b"x"}), "drive letter", "C:/x.txt", {}),
    "backslash": (lambda zp: make_zip(zp, {"a\\b.txt": b"x"}), "backslash", "a\\b.txt", {}),
    "nul": (_nul, "NUL", "a\x00b.txt", {}),
    "empty-part": (lambda zp: make_zip(zp, {"a//b.txt": b"x"}), "object path", "a//b.txt", {}),
    "dot-part": (lambda zp: make_zip(zp, {"a/./b.txt": b"x"}), "object path", "a/./b.txt", {}),
    "symlink": (_symlink, "symbolic link", "data/link", {}),
    "duplicate": (_duplicate, "duplicate", "a.txt", {}),
    "file-and-folder": (lambda zp: make_zip(zp, {"a": b"1", "a/b": b"2"}), "file and a folder", "a", {}),
    "encrypted": (_encrypted, "encrypted", "secret.txt", {}),
    "too-many": (lambda zp: make_zip(zp, {"a": b"", "b": b"", "c": b""}), "entries", "", {"max_files": 2}),
    "too-big": (lambda zp: make_zip(zp, {"a": b"x" * 6, "b": b"y" * 5}), "unpacks to 11", "",
                {"max_total_bytes": 10}),
    "bomb": (lambda zp: make_zip(zp, {"ok.txt": b"1", "zeros.bin": bytes(50 * 2**20)}), "ratio",
             "zeros.bin", {}),
    "not-zip": (lambda zp: zp.write_bytes(b"this is no zip archive\n" * 100), "not a zip archive", "", {}),
    "empty-zip": (lambda zp: make_zip(zp, {"dir/": b"", "__MACOSX/x": b"1"}), "no files", "", {}),
}


@pytest.mark.parametrize("dest_exists", [False, True])
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_archives_write_nothing(tmp_path: Path, case: str, dest_exists: bool) -> None:
    build, reason, path, limits = REFUSALS[case]
    zp = tmp_path / "upload.zip"
    build(zp)
    dest = tmp_path / "out"
    if dest_exists:
        dest.mkdir()
    with pytest.raises(InvalidDatasetError) as err:
        safe_extract(zp, dest, **limits)  # type: ignore[arg-type]
    assert reason in err.value.reason and err.value.path == path
    assert isinstance(err.value, ValueError)
    assert (list(dest.iterdir()) == []) if dest_exists else not dest.exists()


def test_header_lying_about_size_aborts_and_removes_what_was_written(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "liar.zip", {"first.txt": b"written first", "liar.txt": b"x" * 5000},
                  zipfile.ZIP_STORED)
    patch_headers(zp, "liar.txt", size=10)  # declares 10 bytes, holds 5000
    dest = tmp_path / "out"
    with pytest.raises(InvalidDatasetError) as err:
        safe_extract(zp, dest)
    assert err.value.path == "liar.txt"
    assert not dest.exists()


def test_own_byte_count_catches_excess_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # zipfile itself stops at the declared size; this checks the second line of defence behind it.
    zp = make_zip(tmp_path / "z.zip", {"first.txt": b"1", "liar.txt": b"x" * 10})
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: io.BytesIO(b"x" * 11)
                        if info.filename == "liar.txt" else real_open(self, info, *a, **k))
    with pytest.raises(InvalidDatasetError, match="more data than its header declares"):
        safe_extract(zp, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_small_compressible_entries_are_not_bombs(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "z.zip", {"zeros.bin": bytes(2**20)})  # ratio ~1000, but only 1 MiB
    assert safe_extract(zp, tmp_path / "out") == ["zeros.bin"]


def test_dest_must_be_new_or_empty(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "z.zip", {"a.txt": b"1"})
    tree(tmp_path / "out", {"old.txt": "x"})
    with pytest.raises(FileExistsError):
        safe_extract(zp, tmp_path / "out")


# -- safe_extract: what is written -------------------------------------------------------------
def test_single_top_folder_is_stripped_and_junk_skipped(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "z.zip", {
        "pets/": b"", "pets/cat/": b"", "pets/cat/1.png": b"c1", "pets/dog/2.png": b"d2",
        "pets/.DS_Store": b"junk", "__MACOSX/pets/._1.png": b"junk",
    })
    dest = tmp_path / "out"
    assert safe_extract(zp, dest) == ["cat/1.png", "dog/2.png"]
    assert (dest / "cat/1.png").read_bytes() == b"c1" and (dest / "dog/2.png").read_bytes() == b"d2"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["cat", "cat/1.png",
                                                                               "dog", "dog/2.png"]


@pytest.mark.parametrize(("entries", "strip", "expected"), [
    ({"train/cat/1.png": b"1"}, True, ["train/cat/1.png"]),  # a split is data, not a wrapper
    ({"a/x.txt": b"1", "b/y.txt": b"2"}, True, ["a/x.txt", "b/y.txt"]),  # two top folders
    ({"top/x.txt": b"1", "y.txt": b"2"}, True, ["top/x.txt", "y.txt"]),  # a top-level file
    ({"top/x.txt": b"1"}, False, ["top/x.txt"]),
])
def test_no_strip(tmp_path: Path, entries: dict[str, bytes], strip: bool, expected: list[str]) -> None:
    dest = tmp_path / "out"
    assert safe_extract(make_zip(tmp_path / "z.zip", entries), dest, strip_top_folder=strip) == expected
    assert all((dest / p).is_file() for p in expected)


# -- validate_layout ---------------------------------------------------------------------------
def test_constants() -> None:
    assert FORMATS == ("dir", "json", "single_text", "brat_ann")
    assert "image_classification" in TASK_TYPES and "other" in TASK_TYPES


def test_dir_flat_and_split(tmp_path: Path) -> None:
    flat = tree(tmp_path / "flat", {"cat/1.png": "ab", "dog/2.png": "c", "README.md": "r", "meta.json": "{}",
                                    "LICENSE.txt": "l"})
    assert validate_layout(flat, "dir") == DatasetSummary("dir", 5, 7, ("cat", "dog"), (), {"all": 2})
    split = tree(tmp_path / "split", {"train/cat/1.png": "1", "train/dog/2.png": "2", "val/cat/3.png": "3"})
    s = validate_layout(split, "dir")
    assert (s.classes, s.splits, s.examples_per_split) == (("cat", "dog"), ("train", "val"),
                                                           {"train": 2, "val": 1})


def test_dir_from_zip_end_to_end(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "z.zip", {"ds/train/a/1.txt": b"1", "ds/test/a/2.txt": b"2"})
    safe_extract(zp, tmp_path / "out")
    assert validate_layout(tmp_path / "out", "dir").splits == ("train", "test")


@pytest.mark.parametrize(("files", "empty_dirs", "reason", "path"), [
    ({"cat/1.png": "1", "x.png": "2"}, [], "top level", "x.png"),
    ({"cat/1.png": "1"}, ["dog", "bird"], "empty class", "bird, dog"),
    ({"train/cat/1.png": "1", "dog/2.png": "2"}, [], "mixed", "dog"),
    ({"cat/sub/1.png": "1"}, [], "too deep", "cat/sub"),
    ({"train/cat/1.png": "1", "train/2.png": "2"}, [], "not inside a class", "train/2.png"),
    ({"train/cat/1.png": "1"}, ["val"], "without class folders", "val"),
    ({"README.md": "r"}, [], "no class folders", ""),
])
def test_dir_invalid(tmp_path: Path, files: dict[str, bytes | str], empty_dirs: list[str], reason: str,
                     path: str) -> None:
    root = tree(tmp_path / "ds", files)
    for d in empty_dirs:
        (root / d).mkdir()
    with pytest.raises(InvalidDatasetError) as err:
        validate_layout(root, "dir")
    assert reason in err.value.reason and err.value.path == path


def test_json_valid(tmp_path: Path) -> None:
    root = tree(tmp_path / "ds", {"train.jsonl": '{"a": 1}\n\n{"a": 2}\n', "test.json": "[1, 2, 3]",
                                  "extra/more.jsonl": '"x"\n', "README.md": "r"})
    s = validate_layout(root, "json")
    assert (s.files, s.examples_per_split) == (4, {"train": 2, "test": 3, "all": 1})


@pytest.mark.parametrize(("files", "reason", "path"), [
    ({"ok.json": "{}", "d.jsonl": '{"a": 1}\n{"a": \n'}, "line 2", "d.jsonl"),
    ({"d.json": '{\n  "a": 1,\n}'}, "line 3", "d.json"),
    ({"d.json": "{}", "x.csv": "a,b"}, "not a .json", "x.csv"),
    ({"README.md": "r"}, "no .json", ""),
    ({"d.jsonl": "\n\n"}, "no records", "d.jsonl"),
    ({"d.jsonl": b'"\xff"\n'}, "UTF-8", "d.jsonl"),
])
def test_json_invalid(tmp_path: Path, files: dict[str, bytes | str], reason: str, path: str) -> None:
    with pytest.raises(InvalidDatasetError) as err:
        validate_layout(tree(tmp_path / "ds", files), "json")
    assert reason in err.value.reason and err.value.path == path


def test_single_text_valid(tmp_path: Path) -> None:
    root = tree(tmp_path / "ok", {"data.csv": "a,b\n1,2\n\n3,4\n", "README.md": "r", "LICENSE": "l"})
    assert validate_layout(root, "single_text") == DatasetSummary("single_text", 3, 15,
                                                                  examples_per_split={"all": 3})


@pytest.mark.parametrize(("files", "reason", "path"), [
    ({"a.txt": "1", "b.tsv": "2"}, "found 2", "a.txt, b.tsv"),
    ({"a.parquet": "1"}, "exactly one", "a.parquet"),
    ({"README.md": "r"}, "found 0", ""),
    ({"a.txt": "\n"}, "empty", "a.txt"),
    ({"a.txt": b"ok\n\xff\xfe\n"}, "UTF-8 text at line 2", "a.txt"),
])
def test_single_text_invalid(tmp_path: Path, files: dict[str, bytes | str], reason: str, path: str) -> None:
    with pytest.raises(InvalidDatasetError) as err:
        validate_layout(tree(tmp_path / "ds", files), "single_text")
    assert reason in err.value.reason and err.value.path == path


def test_brat_ann(tmp_path: Path) -> None:
    root = tree(tmp_path / "ok", {"a.txt": "t", "a.ann": "T1", "sub/b.txt": "t", "sub/b.ann": "",
                                  "annotation.conf": "", "README.txt": "r"})
    assert validate_layout(root, "brat_ann").examples_per_split == {"all": 2}
    for name, files, reason, path in [
        ("unmatched", {"a.txt": "", "a.ann": "", "b.txt": "", "c.ann": ""}, "2 file(s)", "b.txt, c.ann"),
        ("stray", {"a.txt": "", "a.ann": "", "x.json": "{}"}, "not a brat file", "x.json"),
        ("none", {"annotation.conf": ""}, "no .txt/.ann", ""),
    ]:
        with pytest.raises(InvalidDatasetError) as err:
            validate_layout(tree(tmp_path / name, files), "brat_ann")
        assert reason in err.value.reason and err.value.path == path, name


def test_unknown_format_symlink_and_missing_root(tmp_path: Path) -> None:
    root = tree(tmp_path / "ds", {"cat/1.png": "1"})
    with pytest.raises(InvalidDatasetError, match="dir, json, single_text, brat_ann"):
        validate_layout(root, "parquet")
    with pytest.raises(InvalidDatasetError, match="not a directory"):
        validate_layout(tmp_path / "missing", "dir")
    (root / "cat/2.png").symlink_to("/etc/passwd")
    with pytest.raises(InvalidDatasetError, match="symbolic link"):
        validate_layout(root, "dir")
