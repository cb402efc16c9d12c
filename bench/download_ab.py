"""Downloads only, before and after a change of the SDK, in one process (issue 17, part 5).

    uv run python bench/download_ab.py --before /tmp/old/assethub/client.py --shape big
    uv run python bench/download_ab.py --before OLD --shape small --profile distributed

``transfer.py`` uploads with every tool in every round, which on the shared 2-core VM is most of
its time and most of its noise. This uploads the shape once (through the Asset Hub server with
the SDK, and once more for each peer), then downloads the same commit, round after round, with
each tool in a rotated order into an empty directory and an empty cache:

- ``before``: the SDK's ``Client`` from the file ``--before`` (another revision's
  ``assethub/client.py``, loaded as a module of its own beside this tree's);
- ``after``: this tree's ``Client``;
- ``storage`` (embedded profile): ``Storage.download`` of the same data, the proxied path's target;
- ``lakectl`` and ``s3`` (distributed profile): ``lakectl fs download --recursive`` of the
  server's repository (it presigns there) and boto3 straight to the bucket (``DirectS3Tool``).

Every download is checked file by file. Printed: per tool the median seconds, MB/s and client
CPU, and per round the ratios after / reference and before / reference (a ratio inside one
round is what the noise of other work on the machine spoils least).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _distributed
import transfer as tr
from api import start_server  # bench/api.py: an Asset Hub server process on a private catalog

from assethub.client import Client
from assethub.storage import Storage
from infra import lakefs, seaweedfs


def load_client(path: str) -> type[Client]:
    spec = importlib.util.spec_from_file_location("assethub_client_before", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.Client  # type: ignore[no-any-return]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="an older assethub/client.py")
    p.add_argument("--shape", choices=["big", "small"], default="big")
    p.add_argument("--profile", choices=["embedded", "distributed"], default="embedded")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--wait", type=float, default=3.0)
    p.add_argument("--quick", action="store_true", help="64 MiB / 500 files")
    p.add_argument("--cprofile", action="store_true",
                   help="then one more download by `after`, on one thread, under cProfile")
    args = p.parse_args()
    tr.QUIET_LIMIT[0] = args.wait
    spec = next(s for s in tr.shapes(args.quick) if s.name == args.shape)
    before_client = load_client(args.before)
    home = Path(tempfile.mkdtemp(prefix="assethub-bench-ab-"))
    store = None
    if args.profile == "distributed":
        instance, store = _distributed.start(home / "stack")
        tr.NAMESPACE = f"s3://{_distributed.BUCKET}/{tr.NAMESPACE_ROOT}"
    else:
        os.environ["ASSETHUB_HOME"] = str(home / "stack")
        instance = lakefs.start()
    os.environ["ASSETHUB_STORAGE_NAMESPACE"] = tr.NAMESPACE
    api = tr.api_client(instance)
    repos = tr.Repositories(api, instance, uuid.uuid4().hex[:6], store)
    work = home / "work"
    proc = None
    try:
        # a loaded machine (load 20 on 2 cores) starts the server in well over a minute
        proc, url, token = start_server(instance, home / "server-home", timeout=600)
        shape = tr.generate(spec, work / "src")
        tr.log(f"{spec.name}: {shape.describe()}")
        storage = Storage(instance.endpoint, instance.access_key_id, instance.secret_access_key,
                          cache_dir=work / "storage-cache", namespace_root=tr.NAMESPACE)
        Client(url, token).create_folder("admin/model/ab")
        asset = f"admin/model/ab/{spec.name}-{uuid.uuid4().hex[:6]}"
        uploader = Client(url, token, cache_dir=work / "upload-cache")
        uploader.create_asset(asset)
        repos.adopt(storage.repository(asset))
        commit = uploader.upload(f"{asset}:main", shape.root, path=tr.PREFIX, message="ab").id
        tools: dict[str, Callable[[Path, Path], object]] = {}

        def sdk(cls: type[Client]) -> Callable[[Path, Path], None]:
            def run(dest: Path, cache: Path) -> None:
                with cls(url, token, cache_dir=cache) as c:
                    c.download(f"{asset}:{commit}", dest, prefix=tr.PREFIX)
            return run

        tools["before"] = sdk(before_client)
        tools["after"] = sdk(Client)
        if store is None:
            own = f"admin/model/ab/storage-{uuid.uuid4().hex[:6]}"
            storage.create_asset(own)
            repos.adopt(storage.repository(own))
            own_commit = storage.upload(f"{own}:main", shape.root, path=tr.PREFIX, message="ab").id

            def by_storage(dest: Path, cache: Path) -> None:
                s = Storage(instance.endpoint, instance.access_key_id, instance.secret_access_key,
                            cache_dir=cache, namespace_root=tr.NAMESPACE)
                s.download(f"{own}:{own_commit}", dest, prefix=tr.PREFIX)
            tools["storage"] = by_storage
            reference = "storage"
        else:
            lakectl = tr.LakectlTool(instance, api, storage.repository(asset))
            tools["lakectl"] = lambda dest, cache: lakectl.download(commit, dest)
            direct = tr.DirectS3Tool(store, f"bench-ab-{uuid.uuid4().hex[:6]}")
            s3_root = direct.upload(shape.root)
            tools["s3"] = lambda dest, cache: direct.download(s3_root, dest)
            reference = "s3" if spec.name == "big" else "lakectl"

        server_cpu, hub_cpu = tr.ServerCPU(instance), tr.ServerCPU(None, proc.pid)
        store_cpu = tr.ServerCPU(None, seaweedfs.SERVER.pid() if store is not None else None)
        times: dict[str, dict[int, tuple[float, float, float, float]]] = {t: {} for t in tools}
        names = list(tools)
        failed: dict[str, list[int]] = {}
        for rnd in range(args.rounds):
            kept = work / f"round-{rnd}"
            for i in range(len(names)):
                name = names[(rnd + i) % len(names)]
                dest, cache = kept / name, kept / f"{name}-cache"
                os.sync()
                tr.wait_until_quiet()
                store0 = store_cpu.seconds() or 0.0
                try:
                    with tr.measure(server_cpu, hub_cpu) as usage:
                        tools[name](dest, cache)
                except Exception as exc:  # one tool's failure is reported, not fatal
                    tr.log(f"round {rnd} {name:8s} FAILED: {type(exc).__name__}: {exc}")
                    failed.setdefault(name, []).append(rnd)
                    continue
                in_store = (store_cpu.seconds() or 0.0) - store0
                tr.verify(dest, shape.manifest)
                other = max(0.0, usage.other_cpu - in_store)
                times[name][rnd] = (usage.seconds, usage.client_cpu, in_store, other)
                tr.log(f"round {rnd} {name:8s} {usage.seconds:7.2f} s  "
                       f"{shape.total_bytes / tr.MB / usage.seconds:8.1f} MB/s  client cpu "
                       f"{usage.client_cpu:5.1f} s  lakeFS {usage.server_cpu or 0:5.1f} s  "
                       f"server {usage.hub_cpu or 0:5.1f} s  store {in_store:5.1f} s  "
                       f"other {other:5.1f} s")
            shutil.rmtree(kept)
        if failed:
            print(f"\nfailed steps (their rounds are left out below): {failed}")
        print(f"\n{args.profile} profile, {spec.name}: {shape.describe()}, {args.rounds} rounds "
              f"(medians); ratios are MB/s over the reference's ({reference}) in the same round\n")
        rows = []
        ok_rounds = [i for i in range(args.rounds) if all(i in t for t in times.values())]
        for name in times:
            runs = [times[name][i] for i in ok_rounds]
            ref = [times[reference][i] for i in ok_rounds]
            if not runs:
                continue
            secs = statistics.median(r[0] for r in runs)
            ratios = [ref[i][0] / runs[i][0] for i in range(len(runs))]
            rows.append([name, f"{secs:.2f}", f"{shape.total_bytes / tr.MB / secs:,.1f}",
                         f"{statistics.median(r[1] for r in runs):.2f}",
                         f"{statistics.median(r[2] for r in runs):.1f}",
                         f"{statistics.median(r[3] for r in runs):.1f}",
                         f"{statistics.median(ratios):.2f}x",
                         " ".join(f"{x:.2f}" for x in ratios)])
        print(tr.table(rows, ["tool", "time s", "MB/s", "client CPU s", "object store CPU s",
                              "other CPU s", f"/ {reference} (median)", "per round"]))
        if args.cprofile:
            import cProfile
            import pstats

            import assethub.client

            # one thread (cProfile sees only its own): where a file's time goes, not the overlap
            assethub.client.run_parallel = lambda jobs, n: [job() for job in jobs]  # type: ignore
            prof = cProfile.Profile()
            prof.runcall(tools["after"], work / "profiled", work / "profiled-cache")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0
    finally:
        repos.delete_all()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if store is not None:
            _distributed.stop()
        else:
            lakefs.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
