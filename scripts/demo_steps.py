"""Helpers for `make demo` (scripts/demo.sh).

    python scripts/demo_steps.py urls MODEL_REF      # the MLflow and lakeFS pages of a model version
    python scripts/demo_steps.py wait-retrain MODEL  # until the data-triggered retrain has finished
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def urls(ref: str) -> None:
    from assethub.client import Client
    from infra import lakefs
    from infra import mlflow as tracking

    hub = Client()
    view = hub.lineage(ref)
    repository = hub.get_asset(ref.split(":")[0]).repository
    lake = lakefs.status()
    ml = tracking.status()
    if lake is not None:
        print(f"lakeFS commit:   {lake.endpoint}/repositories/{repository}/commits/{view.commit}")
        print(f"lakeFS files:    {lake.endpoint}/repositories/{repository}/objects?ref={view.commit}")
    if ml and view.lineage and view.lineage.mlflow_run_id:
        lin = view.lineage
        print(f"MLflow run:      {ml}/#/experiments/{lin.mlflow_experiment_id}/runs/{lin.mlflow_run_id}")
        print(f"MLflow compare:  {ml}/#/experiments/{lin.mlflow_experiment_id}")


def wait_retrain(model: str, timeout: float = 900) -> None:
    """Wait for the retrain that a dataset commit started (through the lakeFS hook, a Prefect
    event and an automation) to finish; print what it decided."""
    import time

    from assethub.client import Client

    hub = Client()
    # the retrain of the dataset commit now on main (not one an earlier demo left behind)
    commits = {hub.resolve(f"{f.dataset}:main") for f in hub.list_follows(model=model)}
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        runs = [r for r in hub.list_runs(model, kind="retrain", limit=20) if r.dataset_commit in commits]
        if runs and runs[0].state != seen:
            seen = runs[0].state
            print(f"retrain {runs[0].id[:12]}: {seen}", flush=True)
        if runs and runs[0].state in ("completed", "failed", "crashed"):
            r = runs[0]
            print(f"  dataset commit {r.dataset_commit[:12]}; {r.error or 'merged into main'}")
            return
        time.sleep(2)
    raise SystemExit(f"no retrain of {model} finished within {timeout:.0f}s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("urls")
    u.add_argument("ref")
    w = sub.add_parser("wait-retrain")
    w.add_argument("model")
    a = p.parse_args()
    if a.cmd == "urls":
        urls(a.ref)
    else:
        wait_retrain(a.model)


if __name__ == "__main__":
    main()
