"""Asset paths and references: round trips, and every malformed input named by its bad part."""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from assethub.errors import InvalidReferenceError
from assethub.refs import (
    AssetKind,
    AssetPath,
    AssetRef,
    validate_branch_name,
    validate_object_path,
    validate_tag_name,
)

FORBIDDEN = '/\\:*?"<>|'
P = "alice/model/image-classification/net"

owners = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True)
kinds = st.sampled_from(["model", "dataset"])
_name_chars = st.characters(exclude_categories=("C", "Z"), exclude_characters=FORBIDDEN) | st.just(" ")
names = st.sampled_from(
    ["数字分类", "Ünïcode", "my model v2", "resnet-50.onnx", "...", "x" * 128, "数" * 128, "a b.c-d_e"]
) | (
    st.text(_name_chars, min_size=1, max_size=128)
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: 0 < len(s) <= 128 and s == s.strip() and s not in (".", ".."))
)
branches = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", fullmatch=True) | st.just("b" * 128)
tags = st.builds("v{}.{}.{}".format, *[st.integers(0, 999)] * 3) | st.from_regex(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True
)
commits = st.text("0123456789abcdef", min_size=64, max_size=64)
ancestry = st.lists(st.sampled_from(["~1", "^2", "~", "^", "~10"]), max_size=3).map("".join)
refs = st.builds(str.__add__, branches | tags | commits, ancestry)


def assert_invalid(
    part: str, bad: str, fn: Callable[..., object], *args: object, **kwargs: object
) -> InvalidReferenceError:
    with pytest.raises(InvalidReferenceError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.part, err.value) == (part, bad)
    assert repr(bad) in str(err)
    return err


# --- round trips ---------------------------------------------------------------------------


@given(owners, kinds, names, names)
@example("alice", "dataset", "digits", "数字分类")
def test_asset_path_round_trips(owner: str, kind: str, folder: str, name: str) -> None:
    text = f"{owner}/{kind}/{folder}/{name}"
    path = AssetPath.parse(text)
    assert str(path) == text
    assert (path.owner, path.kind, path.folder, path.name) == (owner, AssetKind(kind), folder, name)
    built = AssetPath(owner, AssetKind(kind), folder, name)
    assert AssetPath.parse(str(built)) == built == path
    assert hash(built) == hash(path)


@given(owners, kinds, names, names, refs)
@example("alice", "model", "f", "Ünïcode", "v1.0.2")
@example("alice", "model", "f", "n", "a" * 64 + "~1^2")
def test_asset_ref_round_trips(owner: str, kind: str, folder: str, name: str, ref: str) -> None:
    path_text = f"{owner}/{kind}/{folder}/{name}"
    text = f"{path_text}:{ref}"
    parsed = AssetRef.parse(text)
    assert str(parsed) == text
    assert parsed.path == AssetPath.parse(path_text)
    assert parsed.ref == ref
    assert AssetRef.parse(str(parsed)) == parsed == AssetRef(AssetPath.parse(path_text), ref)
    assert AssetRef.coerce(text) == parsed


@given(names, st.integers(0, 128), st.sampled_from([*FORBIDDEN, "\x00", "\n", "\t", "\u200b", "\u00a0"]))
def test_names_with_a_forbidden_character_are_rejected(name: str, at: int, bad: str) -> None:
    value = name[:at] + bad + name[at:]
    assert_invalid("name", value, AssetPath, "alice", "model", "f", value)
    assert_invalid("folder", value, AssetPath, "alice", "model", value, "n")


# --- malformed paths and refs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "part", "bad"),
    [
        ("", "asset path", ""),
        ("alice/model/f", "asset path", "alice/model/f"),
        ("alice/model/f/n/extra", "asset path", "alice/model/f/n/extra"),
        ("alice/model/f/n:main", "asset path", "alice/model/f/n:main"),
        ("Alice/model/f/n", "owner", "Alice"),
        ("/model/f/n", "owner", ""),
        ("a" * 64 + "/model/f/n", "owner", "a" * 64),
        ("alice/models/f/n", "asset type", "models"),
        ("alice/Model/f/n", "asset type", "Model"),
        ("alice/model//n", "folder", ""),
        ("alice/model/./n", "folder", "."),
        ("alice/model/f/..", "name", ".."),
        ("alice/model/f/", "name", ""),
        ("alice/model/f/ net", "name", " net"),
        ("alice/model/f/net ", "name", "net "),
        ("alice/model/f/a\x07b", "name", "a\x07b"),
        ("alice/model/f/Cafe\u0301", "name", "Cafe\u0301"),  # NFD: must be NFC "Café"
        ("alice/model/f/" + "x" * 129, "name", "x" * 129),
    ],
)
def test_bad_asset_paths_name_the_bad_part(text: str, part: str, bad: str) -> None:
    assert_invalid(part, bad, AssetPath.parse, text)
    if part != "asset path":  # the same mistake is reported the same way inside a reference
        assert_invalid(part, bad, AssetRef.parse, text + ":main")


@pytest.mark.parametrize("sep", ["/", ":", "\\"])
def test_constructor_rejects_separators_in_names(sep: str) -> None:
    name = f"a{sep}b"
    err = assert_invalid("name", name, AssetPath, "alice", "model", "f", name)
    assert f"must not contain {sep!r}" in str(err)


@pytest.mark.parametrize(
    ("ref", "bad"),
    [("", ""), ("my branch", "my branch"), ("feature/x", "feature/x"), ("_tx-1", "_tx-1"),
     ("main:x", "main:x"), ("main~12345", "main~12345"), ("v1@", "v1@")],
)
def test_bad_refs_are_rejected(ref: str, bad: str) -> None:
    assert_invalid("ref", bad, AssetRef.parse, f"{P}:{ref}")
    if ref:
        assert_invalid("ref", bad, AssetPath.parse(P).at, ref)


def test_missing_ref_uses_default_or_is_an_error() -> None:
    assert AssetRef.parse(P) == AssetRef(AssetPath.parse(P), "main")
    assert AssetRef.parse(P, default_ref="v1.0").ref == "v1.0"
    assert_invalid("asset reference", P, AssetRef.parse, P, default_ref=None)


@pytest.mark.parametrize("value", [None, 5, b"alice/model/f/n", ["alice", "model", "f", "n"]])
def test_non_strings_are_rejected(value: object) -> None:
    assert_invalid("asset path", repr(value), AssetPath.parse, value)
    assert_invalid("asset reference", repr(value), AssetRef.parse, value)


# --- branch, tag and object-path names --------------------------------------------------------


@pytest.mark.parametrize("name", ["main", "feature-1", "exp_2", "A1", "b" * 128])
def test_valid_branch_names(name: str) -> None:
    assert validate_branch_name(name) == name


@pytest.mark.parametrize("name", ["_tx-abc", "_", "feature/x", "my branch", "", "-x", "v1.0", "b" * 129])
def test_invalid_branch_names(name: str) -> None:
    assert_invalid("branch", name, validate_branch_name, name)


@pytest.mark.parametrize("name", ["v1.0.2", "release-2024.01", "1.0", "RC_1", "t" * 128])
def test_valid_tag_names(name: str) -> None:
    assert validate_tag_name(name) == name


@pytest.mark.parametrize("name", [".hidden", "_x", "v1 0", "v1/0", "", "t" * 129, "v1:0"])
def test_invalid_tag_names(name: str) -> None:
    assert_invalid("tag", name, validate_tag_name, name)


@pytest.mark.parametrize(
    "path", ["a/b/c.png", "file.txt", "数字/图像 1.png", "a/.hidden", "a/..b", "x" * 1024]
)
def test_valid_object_paths(path: str) -> None:
    assert validate_object_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["", "/abs/file", "a/../b", "..", ".", "./a", "a/./b", "a//b", "a/b/", "a\\b", "a\x00b", "x" * 1025],
)
def test_invalid_object_paths(path: str) -> None:
    assert_invalid("object path", path, validate_object_path, path)


@given(st.lists(st.from_regex(r"[\w.-]{1,20}", fullmatch=True).filter(lambda s: s.strip(".")), min_size=1,
                max_size=6))
def test_relative_paths_of_plain_parts_are_valid(parts: list[str]) -> None:
    path = "/".join(parts)
    assert validate_object_path(path) == path


# --- conveniences -------------------------------------------------------------------------------


def test_coerce_accepts_instances_and_strings() -> None:
    path = AssetPath.parse(P)
    ref = AssetRef(path, "v1.0.2")
    assert AssetPath.coerce(path) is path
    assert AssetPath.coerce(P) == path
    assert AssetRef.coerce(ref) is ref
    assert AssetRef.coerce(path) == AssetRef(path, "main")
    assert AssetRef.coerce(f"{P}:v1.0.2") == ref
    assert AssetRef.coerce(P) == AssetRef(path, "main")
    assert AssetRef(P, "dev") == AssetRef(path, "dev")  # a path string is parsed
    assert_invalid("owner", "Bob", AssetRef.coerce, "Bob/model/f/n")


def test_at_builds_a_reference() -> None:
    path = AssetPath.parse(P)
    assert path.at() == AssetRef(path, "main")
    assert str(path.at("v2")) == f"{P}:v2"
    assert path.at("main~1").ref == "main~1"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("a" * 64, True), ("0123456789abcdef" * 4, True), ("deadbeef", True), ("main", False),
     ("v1.0.2", False), ("A" * 64, False), ("abc12", False), ("a" * 64 + "~1", False)],
)
def test_looks_like_commit(ref: str, expected: bool) -> None:
    assert AssetPath.parse(P).at(ref).looks_like_commit is expected


def test_is_dataset_and_kind() -> None:
    dataset = AssetPath.parse("alice/dataset/digits/mnist")
    model = AssetPath.parse(P)
    assert dataset.is_dataset and dataset.kind is AssetKind.DATASET
    assert not model.is_dataset and model.kind is AssetKind.MODEL
    assert AssetPath("alice", "dataset", "d", "n").kind is AssetKind.DATASET  # plain str is coerced


def test_values_are_frozen() -> None:
    path = AssetPath.parse(P)
    ref = path.at("v1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        path.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.ref = "main"  # type: ignore[misc]
    assert str(path) == P and ref.ref == "v1"
