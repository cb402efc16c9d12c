"""A small job for test_replicas' two Prefect workers: it meets the other job (both must be
running at once, so with one run per worker each worker runs one), then commits a file naming
its worker through the Asset Hub servers of ``ASSETHUB_URL`` (both replicas, comma-separated)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from prefect import flow


@flow(name="replica-job")
def replica_job(asset: str, job: str, meeting: str, peers: int = 2) -> str:
    from assethub.client import Client

    here = Path(meeting)
    (here / job).write_text(os.environ.get("ASSETHUB_TEST_WORKER", "?"))
    deadline = time.monotonic() + 300
    while len(list(here.iterdir())) < peers:  # the other job runs at the same time, or never
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job} ran alone: the other job never started")
        time.sleep(0.2)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"{job}.txt"
        f.write_text(os.environ.get("ASSETHUB_TEST_WORKER", "?"))
        return Client().upload(f"{asset}:main", f, message=f"job {job}").id
