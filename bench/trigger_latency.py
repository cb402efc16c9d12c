"""How fast data-triggered retraining and deployment runs start.

    uv run python bench/trigger_latency.py [--rounds 2]

On loopback, the embedded stack (lakeFS, the Asset Hub server as its own process, MLflow, a
Prefect server and a process worker on the pool ``local``), deployments registered:

* commit -> retrain running: a commit to a followed dataset's main (the upload returns) until
  the retrain flow run is Running. The chain: lakeFS post-merge action -> the server's hook ->
  a Prefect event -> the follow's automation -> a flow run -> the worker picks it up (it polls
  every second) and starts it in a new process.
* run_deployment -> command: ``run_deployment("train/local")`` called until the training
  command starts (it writes the time first); the peer is the same flow run in-process
  (``flows.train.train(...)``, no worker, no deployment), the ratio is printed.

Target: both under 10 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

DATASET = "admin/dataset/bench/digits"
MODEL = "admin/model/bench/digits"
FOLLOWED = "admin/model/bench/followed"


def marker_command(marker: Path) -> str:
    return f"date +%s.%N > {marker} && python train.py"


def wait_file(path: Path, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return float(path.read_text())
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {path}")


def retrain_started(after: datetime, timeout: float = 300) -> Any:
    """The first retrain flow run created after ``after``, once it is Running (or done)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as c:
        while time.monotonic() < deadline:
            runs = [r for r in c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["retrain"])))
                    if r.created and r.created >= after and r.start_time is not None]
            if runs:
                return min(runs, key=lambda r: r.start_time)
            time.sleep(0.1)
    raise SystemExit("no retrain flow run started")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="assethub-bench-trigger-"))
    os.environ["ASSETHUB_HOME"] = str(home)
    from api import start_server  # bench/api.py: the server as its own process

    from infra import lakefs
    from infra import mlflow as tracking
    from infra import prefect as orchestration

    tracking.start(wait=False)
    api = orchestration.start_server(wait=False)
    lake = lakefs.start()
    os.environ["ASSETHUB_PREFECT_API_URL"] = api
    server, url, token = start_server(lake, home)
    mlflow_url = tracking.wait()
    orchestration.wait()
    os.environ.update(ASSETHUB_URL=url, ASSETHUB_TOKEN=token, MLFLOW_TRACKING_URI=mlflow_url,
                      PREFECT_API_URL=api)
    orchestration.start_worker({"ASSETHUB_URL": url, "ASSETHUB_TOKEN": token,
                                "MLFLOW_TRACKING_URI": mlflow_url, "ASSETHUB_HOME": str(home)})
    try:
        from flow_overhead import git_repo
        from prefect.deployments import run_deployment

        from assethub.client import Client
        from assethub.hub import DatasetMeta
        from deployments import deploy_all
        from examples.datasets import write_digits
        from flows.train import train

        deploy_all()
        hub = Client(url, token)
        hub.create_folder("admin/dataset/bench")
        hub.create_folder("admin/model/bench")
        hub.create_asset(DATASET, dataset=DatasetMeta("image_classification", "dir", "test_set", None,
                                                      "test"))
        hub.create_asset(MODEL)
        hub.create_asset(FOLLOWED)
        data = home / "digits"
        write_digits(data)
        hub.upload(f"{DATASET}:main", data, message="digits")
        repo = git_repo(ROOT / "examples" / "digits-classifier", home / "code")
        fast = {"epochs": 1, "seed": 1}

        # run_deployment -> the training command starts; in-process flow as the peer
        deployed, local = [], []
        for i in range(args.rounds + 1):  # the first round warms caches (Git mirror, data): not counted
            marker = home / f"deployed-{i}"
            t0 = time.time()
            run_deployment("train/local", timeout=0, parameters={
                "model": MODEL, "dataset": f"{DATASET}:main", "repo": repo, "params": fast,
                "command": marker_command(marker)})
            started = wait_file(marker) - t0
            marker2 = home / f"local-{i}"
            wait_done = time.time()
            train(model=MODEL, dataset=f"{DATASET}:main", repo=repo, params=fast,
                  command=marker_command(marker2))
            if i:
                deployed.append(started)
                local.append(wait_file(marker2) - wait_done)
            time.sleep(20)  # let the deployed run finish before the next round (2 cores)

        # commit -> retrain flow run running
        hub.follow(FOLLOWED, DATASET, repo=repo, params=fast)
        triggered = []
        src = next((data / "train").rglob("*.png"))
        for i in range(args.rounds):
            extra = home / f"extra-{i}" / src.parent.name
            extra.mkdir(parents=True)
            (extra / f"bench-{i}.png").write_bytes(src.read_bytes())
            hub.upload(f"{DATASET}:main", extra.parent, path="train", message=f"bench {i}")
            committed = datetime.now().astimezone()
            run = retrain_started(committed)
            triggered.append((run.start_time - committed).total_seconds())
            time.sleep(60)  # let it finish (train + merge) before the next commit
    finally:
        orchestration.stop()
        server.terminate()
        server.wait(10)
        lakefs.stop()
        tracking.stop()
        shutil.rmtree(home, ignore_errors=True)

    d, loc, t = statistics.median(deployed), statistics.median(local), statistics.median(triggered)
    print(f"\nrounds: {args.rounds}")
    print(f"{'':42}{'seconds':>9}{'ratio':>8}")
    print(f"{'commit -> retrain flow run running':42}{t:9.2f}{'':>8}   (target: < 10 s) "
          f"[{', '.join(f'{x:.2f}' for x in triggered)}]")
    print(f"{'run_deployment -> training command starts':42}{d:9.2f}{d / loc:8.2f}   (target: < 10 s) "
          f"[{', '.join(f'{x:.2f}' for x in deployed)}]")
    print(f"{'in-process flow -> training command starts':42}{loc:9.2f}{1:8.2f}   (the peer)")
    print(f"RESULT commit_to_retrain_s={t:.2f} deployment_to_command_s={d:.2f} "
          f"local_flow_to_command_s={loc:.2f}")


if __name__ == "__main__":
    main()
