"""Run a deployment and wait for it; its result as JSON on stdout (what `assethub train
--deployment` uses, so that the run shows in the Prefect UI and runs on a worker).

    python -m deployments.run train/local --parameters '{"model": ..., "dataset": ..., "repo": ...}'
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_KINDS = {"train": "train", "continue-train": "continue_train", "evaluate": "evaluate", "export": "export"}


def register(flow: str, parameters: dict[str, Any]) -> str:
    """Register the job as the caller (ASSETHUB_TOKEN / `assethub login`), deferred: the
    server checks the caller's rights now and keeps the run's token for the worker's service
    user to claim (no token goes into the parameters, which Prefect shows). The run's id."""
    from assethub.client import Client
    from assethub.refs import AssetRef

    kind = _KINDS.get(flow)
    if kind is None:
        raise SystemExit(f"error: --as-me registers train, continue-train, evaluate and export runs, "
                         f"not {flow}")
    p = parameters
    if kind == "export":
        return _register_export(p)
    if kind == "evaluate":
        ref = AssetRef.coerce(p["model"])
        model, base, branch = str(ref.path), str(ref), ref.ref
    elif kind == "continue_train":
        ref = AssetRef.coerce(p["base"])
        model, base, branch = str(p.get("model") or ref.path), str(ref), str(p.get("branch") or "")
    else:
        model, base, branch = str(p["model"]), "", str(p.get("branch") or "")
    with Client() as hub:
        run = hub.create_run(model, kind=kind, branch=branch, dataset=str(p.get("dataset") or ""),
                             base=base, code_url=str(p.get("repo") or ""),
                             code_revision=str(p.get("revision") or ""),
                             code_subpath=str(p.get("subpath") or ""), command=str(p.get("command") or ""),
                             params=dict(p.get("params") or {}), deferred=True,
                             algorithm=str(p.get("algorithm") or ""))
    return run.id


def _register_export(p: dict[str, Any]) -> str:
    from assethub.client import Client
    from assethub.export import parse_options
    from assethub.refs import AssetRef

    ref = AssetRef.coerce(str(p["model"]))
    options = parse_options(str(p.get("format") or "onnx"), str(p.get("quantize") or ""),
                            p.get("max_abs_diff"), p.get("max_accuracy_drop"))
    with Client() as hub:
        branch = str(p.get("branch") or options.default_branch)
        run = hub.create_run(str(ref.path), kind="export", branch=branch,
                             dataset=str(p.get("dataset") or ""), base=str(ref), params=options.to_params(),
                             deferred=True)
    return run.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.run", description=__doc__.split("\n")[0])
    parser.add_argument("deployment", help="<flow>/<deployment>, e.g. train/local")
    parser.add_argument("--parameters", default="{}", help="the flow's parameters as a JSON object")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="adds to the flow's `params` (as `python -m flows train --param`)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait (default: forever)")
    parser.add_argument("--as-me", action="store_true",
                        help="register the run as you first (train, continue-train, evaluate): the "
                             "worker's service user takes it over, acting for you on that run only")
    args = parser.parse_args(argv)
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    from flows.cli import parse_param

    parameters = json.loads(args.parameters)
    if args.param:
        parameters["params"] = {**(parameters.get("params") or {}), **dict(map(parse_param, args.param))}
    if args.as_me:
        parameters["run_id"] = register(args.deployment.split("/")[0], parameters)
    try:
        run = run_deployment(args.deployment, parameters=parameters,
                             timeout=args.timeout)
    except ObjectNotFound:
        print(f"error: no deployment {args.deployment!r} on the Prefect server: run `assethub deploy`",
              file=sys.stderr)
        return 2
    state = run.state
    print(f"flow run {run.name} ({run.id}): {state.name if state else 'unknown'}", file=sys.stderr)
    if state is None or not state.is_completed():
        print(f"error: {state.message if state else 'no state'}", file=sys.stderr)
        return 1
    try:
        result = state.result()
    except Exception as e:  # the run finished; its result was not kept
        result = {"flow_run_id": str(run.id), "note": f"result not available: {e}"}
    print(json.dumps(result, default=str, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
