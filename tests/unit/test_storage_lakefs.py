"""The storage package's one pager, one error translation and dataset policy, without a lakeFS
(the integration tests run all of them against a real one)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import urllib3
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
)
from lakefs_sdk.exceptions import ApiException

from assethub.errors import (
    AlreadyExistsError,
    AssetHubError,
    AssetNotFoundError,
    InvalidReferenceError,
    NotAllowedError,
    ObjectNotFoundError,
    RefNotFoundError,
    StorageUnavailableError,
    TransferError,
)
from assethub.refs import AssetPath, AssetRef
from assethub.storage import _policy
from assethub.storage import gateway as gateway_module
from assethub.storage._lakefs import PAGE, LakeFS, Retry
from assethub.storage.gateway import S3Gateway

MODEL = AssetPath.parse("alice/model/cls/net")
DATASET = AssetPath.parse("alice/dataset/digits/mnist")


def api_error(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="reason")
    exc.body = f'{{"message": "{message}"}}'
    return exc


def raised(exc: BaseException, **options: Any) -> BaseException:
    lake = LakeFS("http://127.0.0.1:1", "key", "secret")
    with pytest.raises(BaseException) as info, lake.translate(**options):
        raise exc
    return info.value


def test_pages_follow_next_offset_and_pass_arguments_through() -> None:
    calls: list[tuple[Any, ...]] = []
    pages = {"": (["a", "b"], True, "b"), "b": (["c"], False, "")}

    def listing(repo: str, *, after: str, amount: int, prefix: str) -> Any:
        calls.append((repo, after, amount, prefix))
        results, more, nxt = pages[after]
        return SimpleNamespace(results=results,
                               pagination=SimpleNamespace(has_more=more, next_offset=nxt))

    lake = LakeFS("http://127.0.0.1:1", "key", "secret")
    assert list(lake.pages(listing, "repo", prefix="p/")) == ["a", "b", "c"]
    assert calls == [("repo", "", PAGE, "p/"), ("repo", "b", PAGE, "p/")]


def test_a_failing_page_is_translated() -> None:
    def listing(*, after: str, amount: int) -> Any:
        raise api_error(404, "repository not found")

    lake = LakeFS("http://127.0.0.1:1", "key", "secret")
    with pytest.raises(AssetNotFoundError):
        list(lake.pages(listing, asset=MODEL))


@pytest.mark.parametrize(("exc", "options", "expected"), [
    (api_error(404, "repository not found"), {"asset": MODEL}, AssetNotFoundError),
    (api_error(404, "not found"), {"ref": "x:main", "what": "object:a.txt"}, ObjectNotFoundError),
    (api_error(404, "not found"), {"ref": "x:nope"}, RefNotFoundError),
    (api_error(409, "exists"), {"what": "branch"}, AlreadyExistsError),
    (api_error(403, "no"), {}, NotAllowedError),
    (api_error(400, "bad"), {"what": "branch"}, InvalidReferenceError),
    # lakeFS failing or out of reach is an outage (503), whatever the call
    (api_error(500, "boom"), {}, StorageUnavailableError),
    (api_error(503, "starting"), {"otherwise": lambda *_: ValueError()}, StorageUnavailableError),
    (ApiException(status=0, reason="SSLError\nhandshake"), {}, StorageUnavailableError),
    (httpx.ConnectError("refused"), {}, StorageUnavailableError),
    (httpx.ReadTimeout("slow"), {}, StorageUnavailableError),
    (httpx.RemoteProtocolError("dropped"), {}, StorageUnavailableError),
    (ConnectionRefusedError(), {}, StorageUnavailableError),
    (TimeoutError(), {}, StorageUnavailableError),
    (urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"), {}, StorageUnavailableError),
    (urllib3.exceptions.MaxRetryError(None, "/", ConnectionRefusedError()), {},
     StorageUnavailableError),
])
def test_each_lakefs_failure_becomes_one_asset_hub_error(
        exc: BaseException, options: dict[str, Any], expected: type[BaseException]) -> None:
    assert type(raised(exc, **options)) is expected


def test_overrides_choose_the_error_or_keep_the_default() -> None:
    conflict = api_error(409, "conflict found")
    assert isinstance(raised(conflict, on={409: lambda *_: Retry()}), Retry)
    assert isinstance(raised(conflict, on={409: lambda *_: None}), AlreadyExistsError)
    chosen = raised(api_error(413, "too big"), otherwise=lambda s, m: ValueError(f"{s} {m}"))
    assert isinstance(chosen, ValueError) and str(chosen) == "413 too big"
    # a 5xx is an outage unless an override names that very status (a merge's busy branch)
    down = raised(api_error(502, "bad gateway"), what="merge",
                  otherwise=lambda s, m: ValueError(f"{s} {m}"))
    assert type(down) is StorageUnavailableError
    assert "lakeFS" in str(down) and "502" in str(down) and "merge" in str(down)
    assert isinstance(raised(api_error(503, "busy"), on={503: lambda *_: Retry()}), Retry)
    assert type(raised(api_error(503, "busy"), on={503: lambda *_: None})) is StorageUnavailableError


class _Answer:
    def __init__(self, status: int) -> None:
        self.status, self.data, self.headers = status, b"<Code>SlowDown</Code>", {}


class _Pool:
    """Stands in for the gateway's urllib3 pool: each request gets the next answer."""

    def __init__(self, *answers: int | BaseException) -> None:
        self.answers = list(answers)

    def urlopen(self, *args: Any, **kwargs: Any) -> _Answer:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return _Answer(answer)


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> S3Gateway:
    monkeypatch.setattr(gateway_module.time, "sleep", lambda _: None)  # the retries' back-off
    return S3Gateway("http://127.0.0.1:1", "AKIAIOSFODNN7EXAMPLE", "x" * 40)


@pytest.mark.parametrize(("answers", "expected"), [
    ((503,), StorageUnavailableError),
    ((500, 500, 500, 500, 502), StorageUnavailableError),
    ((urllib3.exceptions.NewConnectionError(None, "refused"),), StorageUnavailableError),
    ((urllib3.exceptions.ReadTimeoutError(None, "/", "slow"),), StorageUnavailableError),
    ((403,), TransferError),
    ((503, 404), TransferError),
])
def test_gateway_failures_are_outages_or_refusals(
        gateway: S3Gateway, answers: tuple[Any, ...], expected: type[BaseException]) -> None:
    gateway._http = _Pool(*answers)  # type: ignore[assignment]
    with pytest.raises(AssetHubError) as caught:
        gateway._request("GET", "repo", "main/a.bin")
    assert type(caught.value) is expected
    if expected is StorageUnavailableError:
        assert "lakeFS" in str(caught.value)


def _client_error(status: int) -> ClientError:
    return ClientError({"Error": {"Code": "X", "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def _upload_failed(status: int) -> S3UploadFailedError:
    try:
        raise _client_error(status)
    except ClientError:
        try:
            raise S3UploadFailedError("Failed to upload")  # as boto3 does, inside its except
        except S3UploadFailedError as exc:
            return exc


@pytest.mark.parametrize(("exc", "expected"), [
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), StorageUnavailableError),
    (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), StorageUnavailableError),
    (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), StorageUnavailableError),
    (_client_error(503), StorageUnavailableError),
    (_upload_failed(500), StorageUnavailableError),
    (_client_error(403), TransferError),
    (_upload_failed(400), TransferError),
])
def test_the_boto3_clients_failures_are_translated_too(
        gateway: S3Gateway, exc: BaseException, expected: type[BaseException]) -> None:
    with pytest.raises(AssetHubError) as caught, gateway._boto_errors("main/big.bin"):
        raise exc
    assert type(caught.value) is expected


def test_assethub_errors_pass_through_unchanged() -> None:
    original = NotAllowedError("no")
    assert raised(original) is original


def test_datasets_have_only_main_and_keep_their_tags() -> None:
    assert _policy.writable_branch(AssetRef(DATASET, "main")) == "main"
    assert _policy.writable_branch(AssetRef(MODEL, "exp")) == "exp"
    with pytest.raises(NotAllowedError, match="only the 'main' branch"):
        _policy.writable_branch(AssetRef(DATASET, "exp"))
    with pytest.raises(NotAllowedError, match="tag a version instead"):
        _policy.may_create_branch(DATASET, "exp")
    _policy.may_create_branch(MODEL, "exp")
    with pytest.raises(NotAllowedError, match="cannot be deleted"):
        _policy.may_delete_branch(MODEL, "main")
    with pytest.raises(NotAllowedError, match="published version"):
        _policy.may_delete_tag(DATASET, "v1")
    _policy.may_delete_tag(MODEL, "v1")
