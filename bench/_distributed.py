"""The distributed profile for ``bench/transfer.py --profile distributed``: lakeFS on an S3 object
store (SeaweedFS, its own server process) with its KV store on PostgreSQL, in a home of its own,
and the peer a user of that object store would otherwise use — boto3 straight to the bucket,
with no lakeFS and no commit in the way.

There the Asset Hub server hands out presigned URLs, so the SDK's bytes go straight to the object
store (the server only authorizes and links); lakectl presigns too (its default when the
blockstore supports it). The Storage-level tool still goes through lakeFS's S3 gateway.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from infra import lakefs, postgres, seaweedfs
from infra.lakefs import LakeFSInstance
from infra.seaweedfs import ObjectStore

BUCKET = seaweedfs.DATA_BUCKET


def start(home: Path) -> tuple[LakeFSInstance, ObjectStore]:
    """PostgreSQL, SeaweedFS and lakeFS (S3 blockstore, PostgreSQL KV) under ``home``."""
    os.environ["ASSETHUB_HOME"] = str(home)
    postgres.start()
    store = seaweedfs.start()
    dsn = postgres.libpq_url(postgres.database("lakefs")) + "?sslmode=disable"
    lake = lakefs.start(backends=lakefs.Backends(store.endpoint, store.access_key_id,
                                                 store.secret_access_key, postgres_dsn=dsn))
    return lake, store


def stop() -> None:
    lakefs.stop()
    seaweedfs.stop()
    postgres.destroy()


def remove_prefix(store: ObjectStore, namespace: str) -> None:
    """Delete every object under an ``s3://bucket/prefix`` namespace (a deleted repository's)."""
    bucket, _, prefix = namespace.removeprefix("s3://").partition("/")
    s3 = store.client()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


class DirectS3Tool:
    """boto3 straight to the object store's bucket: a pool of put/get for small files, the
    transfer manager (its defaults: 8 MiB parts, 10 threads) for large ones. No versioning, no
    commit, no checksum of our own: the floor a presigned path can approach."""

    name = "s3"

    def __init__(self, store: ObjectStore, prefix: str, workers: int, data_prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self.workers = workers
        self.data_prefix = data_prefix
        self.transfer = TransferConfig()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:  # created inside the timed upload, as the other tools do
            import boto3

            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.store.endpoint, region_name=self.store.region,
                aws_access_key_id=self.store.access_key_id,
                aws_secret_access_key=self.store.secret_access_key,
                config=Config(s3={"addressing_style": "path"},
                              max_pool_connections=self.workers * 2,
                              request_checksum_calculation="when_required",
                              response_checksum_validation="when_required"))
        return self._client

    def _large(self, size: int) -> bool:
        return size >= self.transfer.multipart_threshold

    def upload(self, src: Path) -> str:
        """Every file under a fresh key prefix; that prefix stands for the commit."""
        version = f"{self.prefix}/{uuid.uuid4().hex[:8]}"
        files = [(p, f"{version}/{self.data_prefix}/{p.relative_to(src).as_posix()}")
                 for p in sorted(src.rglob("*")) if p.is_file()]
        client = self.client

        def put(item: tuple[Path, str]) -> None:
            client.put_object(Bucket=BUCKET, Key=item[1], Body=item[0].read_bytes())

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(put, [f for f in files if not self._large(f[0].stat().st_size)]))
        for path, key in files:
            if self._large(path.stat().st_size):
                client.upload_file(str(path), BUCKET, key, Config=self.transfer)
        return version

    def download(self, commit: str, dest: Path) -> int | None:
        client, prefix = self.client, f"{commit}/{self.data_prefix}/"
        objects: list[tuple[str, int]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            objects.extend((o["Key"], int(o["Size"])) for o in page.get("Contents", []))

        def target(key: str) -> Path:
            path = dest / key.removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            return path

        def get(key: str) -> None:
            target(key).write_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(get, [k for k, size in objects if not self._large(size)]))
        for key, size in objects:
            if self._large(size):
                client.download_file(BUCKET, key, str(target(key)), Config=self.transfer)
        return sum(size for _, size in objects)

    def cleanup(self) -> None:
        remove_prefix(self.store, f"s3://{BUCKET}/{self.prefix}")
