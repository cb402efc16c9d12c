"""Asset paths and references, parsed once into frozen dataclasses.

``<owner>/<model|dataset>/<folder>/<name>`` names an asset; ``<path>:<ref>`` names a version
of it, where ref is a branch, a tag or a commit id (optionally with ``~N`` / ``^N`` ancestry).
Every value validates itself, and ``str(parse_x(s)) == s`` for every valid ``s``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from assethub.errors import InvalidReferenceError

__all__ = [
    "AssetKind",
    "AssetPath",
    "AssetRef",
    "FolderPath",
    "validate_branch_name",
    "validate_object_path",
    "validate_tag_name",
]

DEFAULT_BRANCH = "main"
MAX_NAME_CHARS = 128
MAX_OBJECT_PATH_CHARS = 1024

_OWNER_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Branches are what lakeFS accepts ([\w][-\w]*), minus a leading "_" which Asset Hub keeps for
# its own transaction branches.
_BRANCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COMMIT_RE = re.compile(r"[0-9a-f]{6,64}")
_REF_RE = re.compile(r"(?P<base>[A-Za-z0-9][A-Za-z0-9._-]{0,127})(?P<ancestry>(?:[~^][0-9]{0,4})*)")
# Characters a folder or asset name may not hold: separators of the path and the reference,
# and anything invisible (control, whitespace other than a plain space inside the name).
_FORBIDDEN_NAME_CHARS = set('/\\:*?"<>|')


class AssetKind(StrEnum):
    MODEL = "model"
    DATASET = "dataset"


def _bad(part: str, value: str, why: str) -> InvalidReferenceError:
    return InvalidReferenceError(f"invalid {part} {value!r}: {why}", part=part, value=value)


def _check_name(part: str, value: str) -> None:
    if not value:
        raise _bad(part, value, "must not be empty")
    if len(value) > MAX_NAME_CHARS:
        raise _bad(part, value, f"longer than {MAX_NAME_CHARS} characters")
    if value in (".", ".."):
        raise _bad(part, value, "'.' and '..' are not names")
    if value != value.strip():
        raise _bad(part, value, "must not start or end with white space")
    if unicodedata.normalize("NFC", value) != value:
        raise _bad(part, value, "must be in Unicode NFC form")
    for ch in value:
        if ch in _FORBIDDEN_NAME_CHARS:
            raise _bad(part, value, f"must not contain {ch!r}")
        if ch != " " and unicodedata.category(ch)[0] in ("C", "Z"):
            raise _bad(part, value, f"must not contain the invisible character U+{ord(ch):04X}")


def validate_branch_name(name: str) -> str:
    if not _BRANCH_RE.fullmatch(name):
        raise _bad(
            "branch", name,
            "use 1-128 letters, digits, '-' or '_', starting with a letter or digit",
        )
    return name


def validate_tag_name(name: str) -> str:
    if not _TAG_RE.fullmatch(name):
        raise _bad(
            "tag", name,
            "use 1-128 letters, digits, '.', '-' or '_', starting with a letter or digit",
        )
    return name


def validate_object_path(path: str) -> str:
    """Check a file's path inside an asset: relative, '/'-separated, no '.' or '..' parts."""
    if not path or path.startswith("/") or path.endswith("/"):
        raise _bad("object path", path, "must be a relative file path like 'dir/file.txt'")
    if len(path) > MAX_OBJECT_PATH_CHARS:
        raise _bad("object path", path, f"longer than {MAX_OBJECT_PATH_CHARS} characters")
    if "\\" in path or "\x00" in path:
        raise _bad("object path", path, "must use '/' as separator and hold no NUL")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise _bad("object path", path, "must not contain empty, '.' or '..' parts")
    return path


@dataclass(frozen=True, slots=True)
class AssetPath:
    """``<owner>/<model|dataset>/<folder>/<name>``."""

    owner: str
    kind: AssetKind
    folder: str
    name: str

    def __post_init__(self) -> None:
        if not _OWNER_RE.fullmatch(self.owner):
            raise _bad("owner", self.owner, "use 1-63 lowercase letters, digits, '-' or '_'")
        try:
            object.__setattr__(self, "kind", AssetKind(self.kind))
        except ValueError:
            raise _bad("asset type", str(self.kind), "must be 'model' or 'dataset'") from None
        _check_name("folder", self.folder)
        _check_name("name", self.name)

    @classmethod
    def parse(cls, text: str) -> AssetPath:
        if not isinstance(text, str):
            raise _bad("asset path", repr(text), "must be a string")
        if ":" in text:
            raise _bad("asset path", text, "holds a ':' reference; use AssetRef.parse for that")
        parts = text.split("/")
        if len(parts) != 4:
            raise _bad(
                "asset path", text,
                "expected <owner>/<model|dataset>/<folder>/<name>, "
                f"got {len(parts)} part(s)",
            )
        owner, kind, folder, name = parts
        return cls(owner, AssetKind(kind) if kind in ("model", "dataset") else kind, folder, name)  # type: ignore[arg-type]

    @classmethod
    def coerce(cls, value: AssetPath | str) -> AssetPath:
        return value if isinstance(value, AssetPath) else cls.parse(value)

    def at(self, ref: str = DEFAULT_BRANCH) -> AssetRef:
        return AssetRef(self, ref)

    @property
    def is_dataset(self) -> bool:
        return self.kind is AssetKind.DATASET

    def __str__(self) -> str:
        return f"{self.owner}/{self.kind.value}/{self.folder}/{self.name}"


@dataclass(frozen=True, slots=True)
class AssetRef:
    """``<asset-path>:<ref>``; ``ref`` is a branch, tag or commit id, ``main`` when omitted."""

    path: AssetPath
    ref: str = DEFAULT_BRANCH

    def __post_init__(self) -> None:
        if not isinstance(self.path, AssetPath):
            object.__setattr__(self, "path", AssetPath.parse(self.path))
        if not _REF_RE.fullmatch(self.ref):
            raise _bad(
                "ref", self.ref,
                "expected a branch, tag or commit id (letters, digits, '.', '-', '_'), "
                "optionally followed by ~N or ^N",
            )

    @classmethod
    def parse(cls, text: str, *, default_ref: str | None = DEFAULT_BRANCH) -> AssetRef:
        """Parse ``path:ref``; without ``:ref`` the ref is ``default_ref`` (an error if None)."""
        if not isinstance(text, str):
            raise _bad("asset reference", repr(text), "must be a string")
        path, sep, ref = text.partition(":")
        if not sep:
            if default_ref is None:
                raise _bad("asset reference", text, "expected <asset-path>:<tag|branch|commit>")
            ref = default_ref
        elif not ref:
            raise _bad("ref", ref, "empty after ':'")
        return cls(AssetPath.parse(path), ref)

    @classmethod
    def coerce(cls, value: AssetRef | AssetPath | str) -> AssetRef:
        if isinstance(value, AssetRef):
            return value
        if isinstance(value, AssetPath):
            return value.at()
        return cls.parse(value)

    @property
    def looks_like_commit(self) -> bool:
        return bool(_COMMIT_RE.fullmatch(self.ref))

    def __str__(self) -> str:
        return f"{self.path}:{self.ref}"


@dataclass(frozen=True, slots=True)
class FolderPath:
    """``<owner>/<model|dataset>/<folder>``: the unit of sharing."""

    owner: str
    kind: AssetKind
    name: str

    def __post_init__(self) -> None:
        # An asset path with a placeholder name checks the three parts the same way.
        AssetPath(self.owner, self.kind, self.name, "x")
        object.__setattr__(self, "kind", AssetKind(self.kind))

    @classmethod
    def parse(cls, text: str) -> FolderPath:
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) != 3:
            raise _bad("folder path", str(text), "expected <owner>/<model|dataset>/<folder>")
        owner, kind, name = parts
        if kind not in ("model", "dataset"):
            raise _bad("asset type", kind, "must be 'model' or 'dataset'")
        return cls(owner, AssetKind(kind), name)

    @classmethod
    def coerce(cls, value: FolderPath | str) -> FolderPath:
        return value if isinstance(value, FolderPath) else cls.parse(value)

    def asset(self, name: str) -> AssetPath:
        return AssetPath(self.owner, self.kind, self.name, name)

    def __str__(self) -> str:
        return f"{self.owner}/{self.kind.value}/{self.name}"
