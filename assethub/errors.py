"""Every exception Asset Hub raises, in one place.

Each also inherits the built-in a caller would catch without knowing Asset Hub, and carries
the fields a caller needs, not only a message::

    AssetHubError
    ├── InvalidReferenceError (ValueError)     bad asset path / reference / name; .part, .value
    ├── NotFoundError (LookupError)            no such user, group, folder, token...; .what, .name
    │   └── AssetNotFoundError                 no such asset (or not shared with you); .path
    ├── RefNotFoundError (LookupError)         no such branch, tag or commit; .ref
    ├── ObjectNotFoundError (FileNotFoundError) no such file in a version; .ref, .path
    ├── AlreadyExistsError (FileExistsError)   asset, branch or tag exists; .what, .name
    ├── NotAllowedError (PermissionError)      refused by a rule (dataset branch, protected
    │                                          branch, immutable tag); .reason
    ├── AuthenticationError (PermissionError)  no, unknown, expired or revoked token
    ├── ForbiddenError (PermissionError)       your role on the folder does not allow it; .needed
    ├── InvalidDatasetError (ValueError)       a dataset archive or layout is wrong; .reason, .path
    ├── PayloadTooLargeError (ValueError)      a request or upload is over the server's limit
    ├── RangeNotSatisfiableError (ValueError)  a byte range outside the file
    ├── MergeConflictError                     both sides changed the same paths; .paths
    ├── ConcurrentUpdateError                  the branch moved past the expected parent
    ├── NothingToCommitError (ValueError)      the change would not change the version
    ├── TransferError (OSError)                an upload/download failed or a checksum differed
    │   └── ChecksumMismatchError (ValueError) what arrived is not what the sender hashed
    ├── StorageUnavailableError (ConnectionError) the server cannot reach lakeFS
    ├── CatalogUnavailableError (ConnectionError) the server cannot reach its catalog database
    ├── ServerUnavailableError (ConnectionError) the SDK cannot reach the Asset Hub server; .url
    ├── JobError                               a train / evaluate / merge job cannot run
    │   ├── CodeFetchError (LookupError)       repository URL, revision or subpath unusable; .url
    │   ├── JobSpecError (ValueError)          no assethub.yaml / no command / bad params
    │   ├── JobFailedError                     the job's command failed; .exit_code, .tail
    │   └── OrchestratorUnavailableError (ConnectionError) the server cannot reach Prefect
    └── ServiceError                           a model service cannot be published or used; .name
        ├── NotServableError (ValueError)      the version holds no MLflow model; .ref, .reason
        ├── PortInUseError (OSError)           the address asked for is taken; .port
        ├── ServiceUnavailableError (ConnectionError) stopped, starting or not answering
        └── PredictionError (ValueError)       the model refused the input; .reason

:data:`WIRE_ERRORS` is the error protocol of the HTTP API: for each class, the HTTP status, the
wire name and the fields that travel with it. The server answers an error with that status and
``{"error": {"type": <wire name>, "message": <str(exc)>, <field>: <value>, ...}}``
(:func:`to_wire`); the SDK rebuilds the same class with the same fields (:func:`from_wire`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "WIRE_ERRORS",
    "AlreadyExistsError",
    "AssetHubError",
    "AssetNotFoundError",
    "AuthenticationError",
    "CatalogUnavailableError",
    "ChecksumMismatchError",
    "CodeFetchError",
    "ConcurrentUpdateError",
    "ForbiddenError",
    "InvalidDatasetError",
    "InvalidReferenceError",
    "JobError",
    "JobFailedError",
    "JobSpecError",
    "MergeConflictError",
    "NotAllowedError",
    "NotFoundError",
    "NotServableError",
    "NothingToCommitError",
    "ObjectNotFoundError",
    "OrchestratorUnavailableError",
    "PayloadTooLargeError",
    "PortInUseError",
    "PredictionError",
    "RangeNotSatisfiableError",
    "RefNotFoundError",
    "ServerUnavailableError",
    "ServiceError",
    "ServiceUnavailableError",
    "StorageUnavailableError",
    "TransferError",
    "WireError",
    "from_wire",
    "to_wire",
    "wire_error",
]


class AssetHubError(Exception):
    """Base of every Asset Hub error."""


class InvalidReferenceError(AssetHubError, ValueError):
    """An asset path, reference, branch, tag or object name is malformed."""

    def __init__(self, message: str, *, part: str, value: str) -> None:
        super().__init__(message)
        self.part = part
        self.value = value


class RangeNotSatisfiableError(AssetHubError, ValueError):
    """A byte range that lies outside the file."""


class NotFoundError(AssetHubError, LookupError):
    def __init__(self, what: str, name: str, detail: str = "") -> None:
        super().__init__(f"{what} not found: {name}" + (f" ({detail})" if detail else ""))
        self.what = what
        self.name = name


class AssetNotFoundError(NotFoundError):
    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__("asset", path, detail)
        self.path = path


class RefNotFoundError(AssetHubError, LookupError):
    def __init__(self, ref: str, detail: str = "") -> None:
        super().__init__(f"no branch, tag or commit {ref!r}" + (f": {detail}" if detail else ""))
        self.ref = ref


class ObjectNotFoundError(AssetHubError, FileNotFoundError):
    def __init__(self, ref: str, path: str) -> None:
        super().__init__(f"no file {path!r} in {ref}")
        self.ref = ref
        self.path = path


class AlreadyExistsError(AssetHubError, FileExistsError):
    def __init__(self, what: str, name: str, detail: str = "") -> None:
        super().__init__(f"{what} {name!r} already exists" + (f": {detail}" if detail else ""))
        self.what = what
        self.name = name


class NotAllowedError(AssetHubError, PermissionError):
    """Refused by a rule of the asset model, whoever asks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthenticationError(AssetHubError, PermissionError):
    """The request carries no valid API token."""


class ForbiddenError(AssetHubError, PermissionError):
    """The caller may see the subject, but their role does not allow this operation."""

    def __init__(self, message: str, *, needed: str = "") -> None:
        super().__init__(message)
        self.needed = needed


class InvalidDatasetError(AssetHubError, ValueError):
    def __init__(self, reason: str, *, path: str = "") -> None:
        super().__init__(reason + (f" ({path})" if path else ""))
        self.reason = reason
        self.path = path


class PayloadTooLargeError(AssetHubError, ValueError):
    pass


class MergeConflictError(AssetHubError):
    def __init__(self, source: str, dest: str, paths: list[str]) -> None:
        shown = ", ".join(paths[:20]) + (f" (+{len(paths) - 20} more)" if len(paths) > 20 else "")
        super().__init__(
            f"merging {source} into {dest} conflicts on {len(paths)} path(s): {shown}; "
            "choose strategy 'source-wins' or 'dest-wins', or change one side"
        )
        self.source = source
        self.dest = dest
        self.paths = paths


class ConcurrentUpdateError(AssetHubError):
    def __init__(self, ref: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{ref} moved: expected parent commit {expected[:12]}, found {actual[:12]}; "
            "fetch the new version and retry"
        )
        self.ref = ref
        self.expected = expected
        self.actual = actual


class NothingToCommitError(AssetHubError, ValueError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"nothing to commit: the change leaves {ref} as it is")
        self.ref = ref


class TransferError(AssetHubError, OSError):
    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ChecksumMismatchError(TransferError, ValueError):
    """The bytes that arrived do not match the checksum their sender declared."""


class StorageUnavailableError(AssetHubError, ConnectionError):
    """The Asset Hub server (or the storage layer) cannot reach lakeFS."""


class CatalogUnavailableError(AssetHubError, ConnectionError):
    """The Asset Hub server cannot reach its catalog database (PostgreSQL down, SQLite locked)."""


class ServerUnavailableError(AssetHubError, ConnectionError):
    """The SDK cannot reach the Asset Hub server at ``url`` (or a proxy in front of it answers
    that the server is down)."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class JobError(AssetHubError):
    """A job (train, continue-train, evaluate, merge) cannot run or did not succeed."""


class CodeFetchError(JobError, LookupError):
    """The training code's repository, revision or subpath cannot be used."""

    def __init__(self, message: str, *, url: str = "", transient: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.transient = transient  # the network failed, not the request: worth retrying


class JobSpecError(JobError, ValueError):
    """The job is not described well enough to run: no ``assethub.yaml``, no command, bad params."""


class JobFailedError(JobError):
    """The job's command exited non-zero (or wrote no model); the last lines of its output."""

    def __init__(self, message: str, *, exit_code: int | None = None, tail: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.tail = tail


class OrchestratorUnavailableError(JobError, ConnectionError):
    """The server cannot start or ask about a job: its orchestrator (Prefect) is not there,
    not set up (no deployment) or failing; the message names it and what to start or set."""


class ServiceError(AssetHubError):
    """A model service cannot be published, changed or used."""

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class NotServableError(ServiceError, ValueError):
    """The model version holds no MLflow model that can be served (no ``model/MLmodel``)."""

    def __init__(self, message: str, *, name: str = "", ref: str = "", reason: str = "") -> None:
        super().__init__(message, name=name)
        self.ref = ref
        self.reason = reason or message


class PortInUseError(ServiceError, OSError):
    """The port asked for is taken by another process."""

    def __init__(self, message: str, *, name: str = "", port: int = 0) -> None:
        super().__init__(message, name=name)
        self.port = port


class ServiceUnavailableError(ServiceError, ConnectionError):
    """The service does not answer: stopped, still starting, failed, or gone."""


class PredictionError(ServiceError, ValueError):
    """The model refused the input (malformed, wrong shape or type); the model's reason."""

    def __init__(self, message: str, *, name: str = "", reason: str = "") -> None:
        super().__init__(message, name=name)
        self.reason = reason or message


# -- the error protocol of the HTTP API --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WireError:
    """One error class on the wire: its HTTP status, wire name and fields (with the value a
    field takes when a body lacks it, e.g. from an older server)."""

    cls: type[AssetHubError]
    status: int
    code: str
    fields: Mapping[str, Any] = field(default_factory=dict)


def _row(cls: type[AssetHubError], status: int, *, code: str = "", **fields: Any) -> WireError:
    return WireError(cls, status, code or cls.__name__, fields)


WIRE_ERRORS: tuple[WireError, ...] = (
    # Anything not more specific is the server's own failure: its message stays in the log.
    _row(AssetHubError, 500, code="InternalError"),
    _row(InvalidReferenceError, 400, part="", value=""),
    _row(NotFoundError, 404, what="", name=""),
    _row(AssetNotFoundError, 404, what="asset", name="", path=""),
    _row(RefNotFoundError, 404, ref=""),
    _row(ObjectNotFoundError, 404, ref="", path=""),
    _row(AlreadyExistsError, 409, what="", name=""),
    _row(NotAllowedError, 409, reason=""),
    _row(AuthenticationError, 401),
    _row(ForbiddenError, 403, needed=""),
    _row(InvalidDatasetError, 400, reason="", path=""),
    _row(PayloadTooLargeError, 413),
    _row(RangeNotSatisfiableError, 416),
    _row(MergeConflictError, 409, source="", dest="", paths=()),
    _row(ConcurrentUpdateError, 412, ref="", expected="", actual=""),
    _row(NothingToCommitError, 409, ref=""),
    _row(TransferError, 502, path=""),
    _row(ChecksumMismatchError, 400, path=""),
    _row(StorageUnavailableError, 503),
    _row(CatalogUnavailableError, 503),
    _row(ServerUnavailableError, 503, url=""),
    _row(JobError, 422),
    _row(CodeFetchError, 422, url="", transient=False),
    _row(JobSpecError, 400),
    _row(JobFailedError, 422, exit_code=None, tail=""),
    _row(OrchestratorUnavailableError, 503),
    _row(ServiceError, 422, name=""),
    _row(NotServableError, 400, name="", ref="", reason=""),
    _row(PortInUseError, 409, name="", port=0),
    _row(ServiceUnavailableError, 503, name=""),
    _row(PredictionError, 400, name="", reason=""),
)
_BY_CLASS = {row.cls: row for row in WIRE_ERRORS}
_BY_CODE = {row.code: row for row in WIRE_ERRORS}


def wire_error(exc: BaseException) -> WireError:
    """The row of ``exc``'s class, or of its nearest listed base (the root for anything else)."""
    return next((_BY_CLASS[c] for c in type(exc).__mro__ if c in _BY_CLASS), _BY_CLASS[AssetHubError])


def to_wire(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the ``error`` body for ``exc``; a 500 says nothing of its cause."""
    row = wire_error(exc)
    if row.cls is AssetHubError:
        return row.status, {"type": row.code,
                            "message": "internal server error; see the server log"}
    fields = {name: getattr(exc, name, default) for name, default in row.fields.items()}
    return row.status, {"type": row.code, "message": str(exc), **fields}


def from_wire(body: Mapping[str, Any]) -> AssetHubError | None:
    """The exception an ``error`` body describes, with the server's message and every field of
    its class; None when the body names no error of :data:`WIRE_ERRORS`."""
    row = _BY_CODE.get(str(body.get("type", "")))
    if row is None:
        return None
    # Not through __init__: constructors compose the message from the fields, and the body
    # carries the server's final message, which may hold more than the fields.
    exc = row.cls.__new__(row.cls)
    exc.args = (str(body.get("message", "")),)
    for name, default in row.fields.items():
        value = body.get(name, default)
        # a list field's default is a tuple in the table, so that no two errors share a list
        setattr(exc, name, list(value) if isinstance(default, tuple) else value)
    return exc


# The exit code of a command line (the `assethub` CLI and `python -m flows`) for each error, and
# a hint to add to its message: 2 bad input, 3 not found, 4 not signed in, 5 not allowed,
# 6 conflict, 7 the server cannot be reached, 1 anything else. The first matching row wins.
EXIT_CODES: tuple[tuple[tuple[type[BaseException], ...], int, str], ...] = (
    ((InvalidReferenceError, InvalidDatasetError, PayloadTooLargeError,
      JobSpecError, NotServableError, PredictionError), 2, ""),
    ((NotFoundError, RefNotFoundError, ObjectNotFoundError, CodeFetchError,
      FileNotFoundError), 3, ""),
    ((AuthenticationError,), 4, " (log in with `assethub login`)"),
    ((ForbiddenError, NotAllowedError), 5, ""),
    ((AlreadyExistsError, MergeConflictError, ConcurrentUpdateError,
      NothingToCommitError, PortInUseError), 6, ""),
    ((ServerUnavailableError,), 7, ""),
    ((AssetHubError, OSError), 1, ""),
)
