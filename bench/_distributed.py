"""The distributed profile for ``bench/transfer.py --profile distributed``: lakeFS on an S3 object
store (SeaweedFS, its own server process) with its KV store on PostgreSQL, in a home of its own,
and the cleanup of a deleted repository's objects there. The peer a user of that object store
would otherwise use — boto3 straight to the bucket — is ``DirectS3Tool`` in transfer.py.

There the Asset Hub server hands out presigned URLs, so the SDK's bytes go straight to the object
store (the server only authorizes and links); lakectl presigns too (its default when the
blockstore supports it). The Storage-level tool still goes through lakeFS's S3 gateway.
"""

from __future__ import annotations

import os
from pathlib import Path

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
