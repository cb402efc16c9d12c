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
    ├── StorageUnavailableError (ConnectionError) lakeFS cannot be reached
    ├── JobError                               a train / evaluate / merge job cannot run
    │   ├── CodeFetchError (LookupError)       repository URL, revision or subpath unusable; .url
    │   ├── JobSpecError (ValueError)          no assethub.yaml / no command / bad params
    │   └── JobFailedError                     the job's command failed; .exit_code, .tail
    └── ServiceError                           a model service cannot be published or used; .name
        ├── NotServableError (ValueError)      the version holds no MLflow model; .ref, .reason
        ├── PortInUseError (OSError)           the address asked for is taken; .port
        ├── ServiceUnavailableError (ConnectionError) stopped, starting or not answering
        └── PredictionError (ValueError)       the model refused the input; .reason
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "AssetHubError",
    "AssetNotFoundError",
    "AuthenticationError",
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
    "PayloadTooLargeError",
    "PortInUseError",
    "PredictionError",
    "RangeNotSatisfiableError",
    "RefNotFoundError",
    "ServiceError",
    "ServiceUnavailableError",
    "StorageUnavailableError",
    "TransferError",
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
    pass


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


class ServiceError(AssetHubError):
    """A model service cannot be published, changed or used."""

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class NotServableError(ServiceError, ValueError):
    """The model version holds no MLflow model that can be served (no ``model/MLmodel``)."""

    def __init__(self, message: str, *, ref: str = "", reason: str = "") -> None:
        super().__init__(message)
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
