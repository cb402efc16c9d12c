"""How much CPU one bundled small file costs the server to write into lakeFS, per way of
writing it (issue 17, part 5: the proxied upload of many small files).

The server holds each bundled file in memory, with the SHA-256 its client declared, and writes
it into the upload's transaction branch. Ways measured, each on the same files, from worker
threads (as the server's bundle writers are), rounds rotated:

- ``gateway``: lakeFS's S3 gateway, a PUT signed with SigV4 per file (``S3Gateway.put_bytes``,
  what the server does today);
- ``gateway-known-sha``: the same PUT with the payload's SHA-256 (already computed and checked)
  handed to the signer instead of hashed again;
- ``api-raw``: lakeFS's API upload (``POST .../objects?path=``, the bytes as the body, basic
  auth computed once, the SHA-256 as ``X-Lakefs-Meta-Sha256``) on a shared raw urllib3 pool.

Prints per way: wall seconds, this process's CPU per file and lakeFS's CPU per file (median of
the rounds, and the range). Uses a private lakeFS (local blockstore) in a temporary home.

    uv run python bench/proxied_put.py --files 1500 --rounds 3
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlencode

import lakefs_sdk
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import ServerCPU

from assethub.storage.gateway import SHA256_META, S3Gateway
from infra import lakefs

Put = Callable[[str, str, bytes, str], None]  # (repo, key "<branch>/<path>", data, sha256)


class KnownShaSigner(S3SigV4Auth):
    """SigV4 with the payload hash given (the bytes were hashed and checked already)."""

    def payload(self, request: AWSRequest) -> str:
        return str(request.headers.get("X-Amz-Content-SHA256") or super().payload(request))


def gateway_known_sha(gw: S3Gateway, key: str, secret: str) -> Put:
    signer = KnownShaSigner(Credentials(key, secret), "s3", "us-east-1")
    pool = urllib3.PoolManager(maxsize=32, retries=False)

    def put(repo: str, k: str, data: bytes, sha256: str) -> None:
        url = f"{gw.endpoint}/{repo}/{quote(k, safe='/~')}"
        req = AWSRequest(method="PUT", url=url, data=data,
                         headers={f"x-amz-meta-{SHA256_META}": sha256,
                                  "X-Amz-Content-SHA256": sha256})
        signer.add_auth(req)
        resp = pool.urlopen("PUT", url, body=data, headers=dict(req.headers.items()),
                            redirect=False, decode_content=False)
        assert resp.status == 200, (resp.status, resp.data[:200])
        assert resp.headers["ETag"].strip('"') == hashlib.md5(data, usedforsecurity=False).hexdigest()

    return put


def api_raw(endpoint: str, key: str, secret: str) -> Put:
    auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    pool = urllib3.PoolManager(maxsize=32, retries=False)

    def put(repo: str, k: str, data: bytes, sha256: str) -> None:
        branch, _, path = k.partition("/")
        url = (f"{endpoint}/api/v1/repositories/{repo}/branches/{branch}/objects?"
               f"{urlencode({'path': path})}")
        resp = pool.urlopen("POST", url, body=data, headers={
            "Authorization": auth, "Content-Type": "application/octet-stream",
            "X-Lakefs-Meta-Sha256": sha256})
        assert resp.status == 201, (resp.status, resp.data[:200])
        got = json.loads(resp.data)
        assert got["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()

    return put


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    rnd = random.Random(5)
    files = [(f"d{i % 50:02d}/f{i:05d}.bin", rnd.randbytes(rnd.randint(4096, 65536)))
             for i in range(args.files)]
    shas = [hashlib.sha256(d).hexdigest() for _, d in files]
    home = tempfile.mkdtemp(prefix="assethub-proxied-put-")
    os.environ["ASSETHUB_HOME"] = home
    inst = lakefs.start(port=18600)
    try:
        cpu = ServerCPU(inst)
        cfg = lakefs_sdk.Configuration(host=f"{inst.endpoint}/api/v1", username=inst.access_key_id,
                                       password=inst.secret_access_key)
        api = lakefs_sdk.ApiClient(cfg)
        repos = lakefs_sdk.RepositoriesApi(api)
        gw = S3Gateway(inst.endpoint, inst.access_key_id, inst.secret_access_key)

        def gateway(repo: str, k: str, data: bytes, sha256: str) -> None:
            gw.put_bytes(repo, k, data, sha256=sha256, path=k)

        ways: dict[str, Put] = {
            "gateway": gateway,
            "gateway-known-sha": gateway_known_sha(gw, inst.access_key_id, inst.secret_access_key),
            "api-raw": api_raw(inst.endpoint, inst.access_key_id, inst.secret_access_key),
        }
        figures: dict[str, list[tuple[float, float, float]]] = {w: [] for w in ways}
        names = list(ways)
        for rd in range(args.rounds):
            for name in names[rd % len(names):] + names[:rd % len(names)]:
                repo = f"pp-{uuid.uuid4().hex[:8]}"
                repos.create_repository(lakefs_sdk.RepositoryCreation(
                    name=repo, storage_namespace=f"local://proxied-put/{repo}",
                    default_branch="main"))
                lakefs_sdk.BranchesApi(api).create_branch(
                    repo, lakefs_sdk.BranchCreation(name="tx", source="main"))
                put = ways[name]
                time.sleep(1)  # let the repository's creation settle out of lakeFS's CPU
                lake0, cpu0, t0 = cpu.seconds() or 0.0, time.process_time(), time.perf_counter()
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(put, [repo] * len(files), [f"tx/{p}" for p, _ in files],
                                  [d for _, d in files], shas))
                wall = time.perf_counter() - t0
                own, lake = time.process_time() - cpu0, (cpu.seconds() or 0.0) - lake0
                figures[name].append((wall, own / len(files) * 1000, lake / len(files) * 1000))
                print(f"round {rd} {name:18} wall {wall:6.2f} s  process {own / len(files) * 1000:5.2f}"
                      f" ms/file  lakeFS {lake / len(files) * 1000:5.2f} ms/file", flush=True)
                repos.delete_repository(repo)
        print(f"\n{args.files} files of 4-64 KiB, {args.threads} threads, {args.rounds} rounds "
              "(median [min-max])")
        print(f"{'way':18} {'wall s':>20} {'process ms/file':>22} {'lakeFS ms/file':>22}")
        for name, rows in figures.items():
            cols = []
            for i in range(3):
                vals = [r[i] for r in rows]
                cols.append(f"{statistics.median(vals):6.2f} [{min(vals):.2f}-{max(vals):.2f}]")
            print(f"{name:18} {cols[0]:>20} {cols[1]:>22} {cols[2]:>22}")
    finally:
        lakefs.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
