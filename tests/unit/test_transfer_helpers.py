"""The SDK's upload grouping and the cache's in-memory blob writes (no server)."""

from __future__ import annotations

import os
from pathlib import Path

from assethub import client as client_module
from assethub._cache import BlobCache, RemoteObject, place_all


def test_upload_bundles_are_bounded_in_count_and_bytes() -> None:
    sizes = {f"f{i:04d}": 1000 for i in range(1000)}
    groups = client_module._upload_bundles(list(sizes), sizes)
    assert [len(g) for g in groups] == [400, 400, 200]  # _BUNDLE_FILES to a bundle
    assert sorted(r for g in groups for r in g) == sorted(sizes)
    big = {f"b{i}": 3 * 1024 * 1024 for i in range(30)}  # 3 MiB each: 32 MiB holds 10
    groups = client_module._upload_bundles(list(big), big)
    assert all(sum(big[r] for r in g) <= client_module._UPLOAD_BUNDLE_BYTES for g in groups)
    assert sum(len(g) for g in groups) == 30 and len(groups) == 3


def test_put_blob_stores_read_only_content_and_place_all_links_it(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    obj = RemoteObject("a/b.bin", 5, "etag", "ab" + "0" * 62)
    cache.put_blob(obj, b"hello")
    assert cache.has(obj) and Path(cache.blob_file(obj)) == cache.blob_path(obj)
    assert cache.blob_path(obj).read_bytes() == b"hello"
    assert cache.blob_path(obj).stat().st_mode & 0o222 == 0  # nobody edits a shared blob
    assert os.listdir(cache.tmp) == []  # nothing left behind
    dest = tmp_path / "out" / "a" / "b.bin"
    place_all([(cache.blob_file(obj), str(dest)), (cache.blob_file(obj), str(dest))])  # twice: kept
    assert dest.read_bytes() == b"hello" and os.path.samefile(dest, cache.blob_path(obj))
    assert not cache.has(RemoteObject("c", 5, "etag", "cd" + "0" * 62))
