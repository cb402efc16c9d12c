"""Helpers for `make demo` (scripts/demo.sh).

    python scripts/demo_steps.py urls MODEL_REF   # the MLflow and lakeFS pages of a model version
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("urls")
    u.add_argument("ref")
    a = p.parse_args()
    if a.cmd == "urls":
        urls(a.ref)


if __name__ == "__main__":
    main()
