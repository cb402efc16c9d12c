"""Serving throughput and latency: an Asset Hub local service against `mlflow models serve`, and
the original model against its ONNX and int8 exports.

    uv run python bench/serving.py [--model-dir DIR] [--seconds 10] [--concurrency 4] [--no-exports]

Both serve the same MLflow model (the digits example, trained here for one epoch unless
``--model-dir`` names a model directory) with 1 and then 2 replicas / uvicorn workers, and are
measured in the same run by the same load generator: ``--concurrency`` keep-alive clients, each
sending one digit image per request to ``/invocations`` for ``--seconds`` after a warm-up.
Asset Hub's service is measured at its address (the supervisor's socket shared by the replicas),
which is what clients call. Prints requests/s and p50/p99 latency, and the ratios (Asset Hub /
MLflow; the target is >= 0.95x MLflow's own server).

Then the same model exported as ``assethub export`` does it (``tasks.export_model``: ONNX through
torch's exporter, and ONNX with int8 weights through onnxruntime's dynamic quantisation, here
unsandboxed) is served by Asset Hub with one replica each and measured the same way: requests/s,
p50/p99 latency and the model's size on disk (the MLflow model directory, and the weights file),
with the ratios to the original.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train_digits(work: Path) -> Path:
    """The digits example's MLflow model, trained for one epoch (seconds) under ``work``."""
    from examples.datasets import write_digits

    data, out = work / "data", work / "out"
    write_digits(data)
    env = {**os.environ, "ASSETHUB_JOB": "train", "ASSETHUB_DATASET_DIR": str(data),
           "ASSETHUB_OUTPUT_DIR": str(out), "ASSETHUB_SPLIT": str(data / "test"),
           "ASSETHUB_PARAMS": json.dumps({"epochs": 1, "seed": 1}),
           "ASSETHUB_METRICS_FILE": str(work / "metrics.json")}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_RUN_ID", None)
    subprocess.run([sys.executable, "train.py"], cwd=ROOT / "examples" / "digits-classifier", env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return out / "model"


def export_model(model_dir: Path, work: Path, quantize: str) -> tuple[Path, dict[str, Any]]:
    """``model_dir`` exported to ONNX (``quantize``: "" or "dynamic-int8") as `assethub export`
    converts it; the MLflow ONNX model's directory and the converter's report (figures)."""
    out = work / f"export-{quantize or 'onnx'}"
    (out / "home").mkdir(parents=True)
    data = work / "data"
    env = {**os.environ, "ASSETHUB_BASE_MODEL_DIR": str(model_dir),
           "ASSETHUB_OUTPUT_DIR": str(out / "output"),
           "ASSETHUB_DATASET_DIR": str(data if data.is_dir() else out / "no-data"),
           "ASSETHUB_SPLIT": str(data / "test") if data.is_dir() else "",
           "ASSETHUB_PARAMS": json.dumps({"format": "onnx", "quantize": quantize}), "HOME": str(out / "home")}
    subprocess.run([sys.executable, "-m", "tasks.export_model"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out / "output" / "model", json.loads((out / "output" / "export.json").read_text())


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def weights_bytes(path: Path) -> int:
    """The weights file of a model directory: model.onnx, else the largest .pt / .pkl file."""
    files = [p for p in path.rglob("*") if p.is_file() and p.suffix in (".onnx", ".pt", ".pth", ".pkl")]
    return max((p.stat().st_size for p in files), default=0)


def compare_exports(model_dir: Path, work: Path, body: bytes, seconds: float, concurrency: int) -> None:
    """The original, its ONNX export and its int8 export, each served by Asset Hub (1 replica)."""
    versions: dict[str, Path] = {"original": model_dir}
    for name, quantize in (("onnx", ""), ("onnx-int8", "dynamic-int8")):
        print(f"exporting {name}...", file=sys.stderr, flush=True)
        versions[name], report = export_model(model_dir, work, quantize)
        print(f"  {report.get('exporter')}: {json.dumps(report.get('figures'), sort_keys=True)}",
              file=sys.stderr, flush=True)
    results: dict[str, dict[str, float]] = {}
    for name, directory in versions.items():
        print(f"starting assethub with the {name} model...", file=sys.stderr, flush=True)
        url, stop = assethub_service(directory, 1, work / f"versions-{name}")
        try:
            results[name] = measure(url, body, seconds, concurrency)
        finally:
            stop()
        results[name].update(size=float(dir_bytes(directory)), weights=float(weights_bytes(directory)))
    print(f"\nexported versions, Asset Hub with 1 replica, 1 image per request, {concurrency} clients, "
          f"{seconds:.0f} s each\n")
    print(f"{'version':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'model KiB':>10} "
          f"{'weights KiB':>12}")
    for name, r in results.items():
        print(f"{name:10} {r['rps']:>9.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {int(r['errors']):>7} "
              f"{r['size'] / 1024:>10.1f} {r['weights'] / 1024:>12.1f}")
    print()
    base = results["original"]
    for name in ("onnx", "onnx-int8"):
        r = results[name]
        print(f"{name}: throughput {r['rps'] / base['rps']:.2f}x the original's; p50 "
              f"{r['p50_ms'] / base['p50_ms']:.2f}x, p99 {r['p99_ms'] / base['p99_ms']:.2f}x its latency; "
              f"model {r['size'] / base['size']:.2f}x, weights {r['weights'] / max(base['weights'], 1):.2f}x "
              "its size on disk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready in {timeout:.0f}s")


def measure(url: str, body: bytes, seconds: float, concurrency: int) -> dict[str, float]:
    """Requests/s and latency percentiles of ``concurrency`` clients for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    stop = threading.Event()
    headers = {"Content-Type": "application/json"}

    def client(i: int) -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                t = time.perf_counter()
                r = http.post(f"{url}/invocations", content=body, headers=headers)
                latencies[i].append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors[i] += 1

    # warm-up: every replica has answered a few requests before the clock starts
    with httpx.Client(timeout=60) as http:
        for _ in range(20):
            http.post(f"{url}/invocations", content=body, headers=headers).raise_for_status()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = np.array([x for xs in latencies for x in xs])
    return {"rps": len(flat) / elapsed, "p50_ms": float(np.percentile(flat, 50)) * 1000,
            "p99_ms": float(np.percentile(flat, 99)) * 1000, "requests": float(len(flat)),
            "errors": float(sum(errors))}


def assethub_service(model_dir: Path, replicas: int, work: Path) -> tuple[str, Callable[[], None]]:
    """A local service exactly as the server runs one (supervisor + replicas on one socket)."""
    from assethub.serving.local import LocalService, bind

    handle = LocalService(work / f"service-{replicas}")
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    handle.launch(sock, {"name": "bench", "model_dir": str(model_dir), "host": "127.0.0.1", "port": port},
                  replicas)
    status = handle.wait(lambda st: st.get("ready", 0) >= replicas, 300)
    if status.get("ready", 0) < replicas:
        handle.terminate()
        raise SystemExit(f"the service did not start: {status}\n{handle.log_tail(30)}")
    return f"http://127.0.0.1:{port}", handle.terminate


def mlflow_server(model_dir: Path, replicas: int, work: Path) -> tuple[str, Callable[[], None]]:
    """``mlflow models serve --env-manager local`` with ``replicas`` uvicorn workers."""
    port = free_port()
    log = open(work / f"mlflow-{replicas}.log", "ab")  # noqa: SIM115 - closed with the server
    # MLflow runs `uvicorn` from PATH: the one next to this Python
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
                             "-w", str(replicas)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
    except SystemExit:
        os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit((work / f"mlflow-{replicas}.log").read_text(errors="replace")[-3000:]) from None
    # /ping answers as soon as one worker runs: wait until every worker has loaded the model
    deadline = time.monotonic() + 300
    while (work / f"mlflow-{replicas}.log").read_text(errors="replace").count(
            "Application startup complete") < replicas and time.monotonic() < deadline:
        time.sleep(0.2)

    def stop() -> None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()

    return url, stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, help="an MLflow model directory (default: train one)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-exports", action="store_true",
                        help="skip the comparison of the original with its ONNX and int8 exports")
    parser.add_argument("--no-mlflow", action="store_true",
                        help="skip the comparison with `mlflow models serve`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or train_digits(work)
        x = np.random.default_rng(0).random((1, 1, 32, 32), dtype=np.float32)
        body = json.dumps({"inputs": x.tolist()}).encode()
        results: dict[tuple[str, int], dict[str, float]] = {}
        for replicas in [] if args.no_mlflow else args.replicas:
            for name, start in (("assethub", assethub_service), ("mlflow", mlflow_server)):
                print(f"starting {name} with {replicas} replica(s)...", file=sys.stderr, flush=True)
                url, stop = start(model_dir, replicas, work)
                try:
                    results[(name, replicas)] = measure(url, body, args.seconds, args.concurrency)
                finally:
                    stop()
        if not args.no_exports:
            compare_exports(model_dir, work, body, args.seconds, args.concurrency)
        if args.no_mlflow:
            return 0
        print(f"\ndigits model, 1 image per request, {args.concurrency} clients, {args.seconds:.0f} s each, "
              f"{os.cpu_count()} CPUs\n")
        print(f"{'server':10} {'replicas':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for (name, replicas), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(f"{name:10} {replicas:>8} {r['rps']:>9.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                  f"{int(r['errors']):>7}")
        print()
        for replicas in args.replicas:
            ours, theirs = results[("assethub", replicas)], results[("mlflow", replicas)]
            ratio: Any = ours["rps"] / theirs["rps"]
            print(f"{replicas} replica(s): throughput {ratio:.2f}x MLflow's "
                  f"({'meets' if ratio >= 0.95 else 'BELOW'} the 0.95x target); p50 "
                  f"{ours['p50_ms'] / theirs['p50_ms']:.2f}x, p99 {ours['p99_ms'] / theirs['p99_ms']:.2f}x "
                  "MLflow's latency")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
