"""One instance of every public Asset Hub error, for the error-protocol tests (unit and integration)."""

from __future__ import annotations

import inspect
from typing import Any

from assethub import errors

PUBLIC: list[type[errors.AssetHubError]] = sorted(
    (obj for name, obj in vars(errors).items()
     if inspect.isclass(obj) and issubclass(obj, errors.AssetHubError) and not name.startswith("_")),
    key=lambda c: c.__name__)

# One instance of each public error, with a value in every field that differs from its default.
SAMPLES: dict[type[errors.AssetHubError], errors.AssetHubError] = {
    errors.AssetHubError: errors.AssetHubError("lakeFS error 500 on get: secret detail"),
    errors.InvalidReferenceError: errors.InvalidReferenceError("bad", part="branch", value="-x"),
    errors.NotFoundError: errors.NotFoundError("folder", "a/model/f"),
    errors.AssetNotFoundError: errors.AssetNotFoundError("a/model/f/n"),
    errors.RefNotFoundError: errors.RefNotFoundError("nope"),
    errors.ObjectNotFoundError: errors.ObjectNotFoundError("a/model/f/n:main", "x.bin"),
    errors.AlreadyExistsError: errors.AlreadyExistsError("tag", "v1"),
    errors.NotAllowedError: errors.NotAllowedError("main is protected"),
    errors.AuthenticationError: errors.AuthenticationError("unknown API token"),
    errors.ForbiddenError: errors.ForbiddenError("needs edit", needed="edit"),
    errors.InvalidDatasetError: errors.InvalidDatasetError("empty class folder", path="cat"),
    errors.PayloadTooLargeError: errors.PayloadTooLargeError("too big"),
    errors.RangeNotSatisfiableError: errors.RangeNotSatisfiableError("bytes=9-10 is outside x"),
    errors.MergeConflictError: errors.MergeConflictError("dev", "main", ["a.txt", "b.txt"]),
    errors.ConcurrentUpdateError: errors.ConcurrentUpdateError("n:main", "a" * 64, "b" * 64),
    errors.NothingToCommitError: errors.NothingToCommitError("n:main"),
    errors.TransferError: errors.TransferError("disk full", path="x.bin"),
    errors.ChecksumMismatchError: errors.ChecksumMismatchError("x.bin arrived corrupted", path="x.bin"),
    errors.StorageUnavailableError: errors.StorageUnavailableError("cannot reach lakeFS"),
    errors.CatalogUnavailableError: errors.CatalogUnavailableError("cannot reach the catalog"),
    errors.ServerUnavailableError: errors.ServerUnavailableError("down", url="http://hub.test"),
    errors.JobError: errors.JobError("cannot run"),
    errors.CodeFetchError: errors.CodeFetchError("no such revision", url="https://g/x.git",
                                                 transient=True),
    errors.JobSpecError: errors.JobSpecError("no assethub.yaml"),
    errors.JobFailedError: errors.JobFailedError("exit 3", exit_code=3, tail="Traceback..."),
    errors.OrchestratorUnavailableError: errors.OrchestratorUnavailableError(
        "cannot reach Prefect at http://127.0.0.1:4200/api"),
    errors.ServiceError: errors.ServiceError("cannot", name="digits"),
    errors.NotServableError: errors.NotServableError("no model", name="digits", ref="a/model/f/n:v1",
                                                     reason="no MLmodel"),
    errors.PortInUseError: errors.PortInUseError("taken", name="digits", port=8080),
    errors.ServiceUnavailableError: errors.ServiceUnavailableError("stopped", name="digits"),
    errors.PredictionError: errors.PredictionError("refused", name="digits", reason="bad shape"),
}


def fields_of(exc: BaseException) -> dict[str, Any]:
    """The values of the fields the error protocol carries for ``exc``'s class."""
    return {name: getattr(exc, name) for name in errors.wire_error(exc).fields}
