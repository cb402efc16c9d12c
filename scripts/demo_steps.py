"""Helpers for `make demo` (scripts/demo.sh).

    python scripts/demo_steps.py urls MODEL_REF      # the MLflow and lakeFS pages of a model version
    python scripts/demo_steps.py wait-retrain MODEL  # until the data-triggered retrain has finished
    python scripts/demo_steps.py console MODEL DATASET SERVICE  # the web console's pages to open
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


def console(model: str, dataset: str, service: str) -> None:
    """Where the demo's results are in the web console, and how to sign in."""
    from assethub import config
    from assethub.client import Client

    hub = Client()
    base = hub.url.rstrip("/")
    runs = hub.list_runs(model, limit=1)
    pages = [
        ("home", "/"),
        ("the model", f"/a/{model}"),
        ("its files at main", f"/a/{model}/files?ref=main"),
        ("its evaluations", f"/a/{model}/evaluations"),
        ("lineage of main", f"/a/{model}/lineage?ref=main"),
        ("compare versions", f"/a/{model}/versions?a=first&b=more"),
        ("train from a form", f"/a/{model}/train"),
        ("the dataset", f"/a/{dataset}/dataset?ref=main"),
        ("dataset history", f"/a/{dataset}/history?ref=main"),
        ("runs", "/runs"),
        *([("the last run", f"/runs/{runs[0].id}")] if runs else []),
        ("the service", f"/services/{service}"),
        ("audit log", "/audit"),
    ]
    print(f"web console: {base}/  (sign in with the admin's API token: "
          f"{config.home() / 'server' / 'admin-token'})")
    # each page opened once, signed in as you are in the CLI: its status and server time
    import httpx

    with httpx.Client(base_url=base, timeout=30) as browser:
        browser.post("/signin", data={"token": hub._token or ""})
        for name, path in pages:
            r = browser.get(path)
            timing = r.headers.get("server-timing", "").partition("app;dur=")[2]
            shown = f"{r.status_code}, {float(timing):.0f} ms server time" if timing else str(r.status_code)
            print(f"  {name:<18} {base}{path}  ({shown})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("urls")
    u.add_argument("ref")
    w = sub.add_parser("wait-retrain")
    w.add_argument("model")
    c = sub.add_parser("console")
    c.add_argument("model")
    c.add_argument("dataset")
    c.add_argument("service")
    a = p.parse_args()
    if a.cmd == "urls":
        urls(a.ref)
    elif a.cmd == "console":
        console(a.model, a.dataset, a.service)
    else:
        wait_retrain(a.model)


if __name__ == "__main__":
    main()
