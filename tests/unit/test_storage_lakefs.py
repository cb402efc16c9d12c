"""The storage package's one pager, one error translation and dataset policy, without a lakeFS
(the integration tests run all of them against a real one)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
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
)
from assethub.refs import AssetPath, AssetRef
from assethub.storage import _policy
from assethub.storage._lakefs import PAGE, LakeFS, Retry

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
    (api_error(500, "boom"), {}, AssetHubError),
    (httpx.ConnectError("refused"), {}, StorageUnavailableError),
    (ConnectionRefusedError(), {}, StorageUnavailableError),
])
def test_each_lakefs_failure_becomes_one_asset_hub_error(
        exc: BaseException, options: dict[str, Any], expected: type[BaseException]) -> None:
    assert type(raised(exc, **options)) is expected


def test_overrides_choose_the_error_or_keep_the_default() -> None:
    conflict = api_error(409, "conflict found")
    assert isinstance(raised(conflict, on={409: lambda *_: Retry()}), Retry)
    assert isinstance(raised(conflict, on={409: lambda *_: None}), AlreadyExistsError)
    chosen = raised(api_error(502, "bad gateway"), otherwise=lambda s, m: ValueError(f"{s} {m}"))
    assert isinstance(chosen, ValueError) and str(chosen) == "502 bad gateway"


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
