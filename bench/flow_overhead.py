"""What running a training as an Asset Hub flow adds over running the script yourself.

    uv run python bench/flow_overhead.py [--example examples/digits-classifier] [--rounds 2]

One process, one machine, the same data and code:

* direct: ``python train.py`` in a checkout, with the ASSETHUB_* contract pointing at the dataset
  already on local disk (what a user does without Asset Hub; no tracking, no commit);
* flow, cold: ``flows.train`` with empty caches (Git mirror cloned, dataset downloaded);
* flow, warm: ``flows.train`` again (mirror and content cache reused).

The flow also registers the run, opens and closes an MLflow run, logs the model to MLflow,
commits it to lakeFS with lineage and records the evaluation: that is the overhead measured.
Everything runs on loopback: lakeFS, the Asset Hub server, MLflow and a Prefect server are
started first and are not timed (as with ``assethub up``). Targets: under 5 s added cold,
under 2 s warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")


def git_repo(source: Path, dest: Path) -> str:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.org"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "commit", "-q", "-m", "code"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    return str(dest)


def direct(code: Path, data: Path, split: str, work: Path, params: str) -> float:
    """The training script on its own, timed from process start to exit."""
    from assethub.runtime import JobContext, Split, environment

    out = work / f"direct-{time.monotonic_ns()}"
    out.mkdir(parents=True)
    ctx = JobContext(job="train", dataset_dir=data, output_dir=out, base_model_dir=None,
                     params=__import__("json").loads(params), split=Split.parse(split, data),
                     metrics_file=out / "metrics.json")
    env = {**os.environ, **environment(ctx), "PYTHONHASHSEED": "0"}
    for k in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "ASSETHUB_TOKEN"):
        env.pop(k, None)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    command = __import__("yaml").safe_load((code / "assethub.yaml").read_text())["train"]
    command = command["command"] if isinstance(command, dict) else command
    t0 = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", command], cwd=code, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--example", type=Path, default=ROOT / "examples" / "digits-classifier")
    parser.add_argument("--rounds", type=int, default=2, help="warm flow runs (and direct runs)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="assethub-bench-flow-"))
    os.environ["ASSETHUB_HOME"] = str(home)
    from api import start_server  # bench/api.py: the server as its own process

    from infra import lakefs
    from infra import mlflow as tracking

    tracking.start(wait=False)
    lake = lakefs.start()
    server, url, token = start_server(lake, home)
    os.environ.update(ASSETHUB_URL=url, ASSETHUB_TOKEN=token, MLFLOW_TRACKING_URI=tracking.wait())
    from prefect.testing.utilities import prefect_test_harness

    try:
        with prefect_test_harness(server_startup_timeout=180):
            from assethub.client import Client
            from assethub.hub import DatasetMeta
            from examples.datasets import write_digits
            from flows.train import train

            hub = Client(url, token)
            hub.create_folder("admin/dataset/bench")
            hub.create_folder("admin/model/bench")
            hub.create_asset("admin/dataset/bench/digits",
                             dataset=DatasetMeta("image_classification", "dir", "test_set", None, "test"))
            hub.create_asset("admin/model/bench/digits")
            data = home / "digits"
            write_digits(data)
            hub.upload("admin/dataset/bench/digits:main", data, message="digits")
            repo = git_repo(args.example, home / "code")
            params = '{"seed": 1}'

            # the first direct run pays for a cold page cache of torch & co.; not counted
            direct(Path(repo), data, str(data / "test"), home, params)
            directs, warm = [], []
            t0 = time.perf_counter()
            train(model="admin/model/bench/digits", dataset="admin/dataset/bench/digits:main", repo=repo,
                  params={"seed": 1})
            cold = time.perf_counter() - t0
            for _ in range(args.rounds):
                directs.append(direct(Path(repo), data, str(data / "test"), home, params))
                t0 = time.perf_counter()
                train(model="admin/model/bench/digits", dataset="admin/dataset/bench/digits:main",
                      repo=repo, params={"seed": 1})
                warm.append(time.perf_counter() - t0)
    finally:
        server.terminate()
        server.wait(10)
        lakefs.stop()
        tracking.stop()
        shutil.rmtree(home, ignore_errors=True)

    base = statistics.median(directs)
    w = statistics.median(warm)
    print(f"\nexample: {args.example.name}; direct runs {', '.join(f'{d:.2f}' for d in directs)} s; "
          f"warm flow runs {', '.join(f'{x:.2f}' for x in warm)} s")
    print(f"{'':24}{'seconds':>9}{'added':>9}{'ratio':>8}")
    print(f"{'script, run directly':24}{base:9.2f}{'':>9}{1:8.2f}")
    print(f"{'flows.train, cold':24}{cold:9.2f}{cold - base:9.2f}{cold / base:8.2f}   (target: < 5 s added)")
    print(f"{'flows.train, warm':24}{w:9.2f}{w - base:9.2f}{w / base:8.2f}   (target: < 2 s added)")
    print(f"RESULT direct_s={base:.2f} flow_cold_s={cold:.2f} flow_warm_s={w:.2f} "
          f"added_cold_s={cold - base:.2f} added_warm_s={w - base:.2f}")


if __name__ == "__main__":
    main()
