"""How long dataset statistics take, per 10,000 samples.

    uv run python bench/stats_time.py [--samples 10000] [--rounds 3]
    uv run python bench/stats_time.py --url http://127.0.0.1:8780 --token ah_... --folder me/dataset/bench

Three datasets of ``--samples`` samples each, from data that packages ship: scikit-learn's
digits as PNG files in class folders (cycled), iris as one CSV table (rows cycled), and Python's
docstrings as JSON-lines records (cycled). Each is measured as the server computes it
(:func:`assethub.datastats.compute` over the files on local disk; median of ``--rounds``).
With ``--url``/``--token``/``--folder`` also through a running server: the images uploaded to
a new dataset in that folder, then ``Client.stats`` timed on the first ask (the server reads the
commit's files and computes) and on the second (kept in the catalog).

:func:`stats_time` is the measurement; ``bench/data.py`` may call it. It prints one line
``RESULT stats_per_10k_s images=... table=... text=... [server_cold=... server_warm=...]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_images(root: Path, samples: int) -> Path:
    """``samples`` PNG files of the digits in ``<class>/`` folders."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    for i in range(samples):
        j = i % len(d.images)
        p = root / str(d.target[j]) / f"{i:06d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((d.images[j] * 16).clip(0, 255).astype(np.uint8)).save(p)
    return root


def make_table(root: Path, samples: int) -> Path:
    """One CSV of ``samples`` rows of iris (with an id column)."""
    import pandas as pd
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    rows = pd.concat([frame] * (samples // len(frame) + 1), ignore_index=True).iloc[:samples].copy()
    rows.insert(0, "id", range(samples))
    root.mkdir(parents=True, exist_ok=True)
    rows.to_csv(root / "iris.csv", index=False)
    return root


def make_text(root: Path, samples: int) -> Path:
    """One JSON-lines file of ``samples`` records: standard-library docstrings by module."""
    import collections
    import json as json_module
    import pathlib
    import string
    import textwrap

    docs = [(m.__name__, inspect.getdoc(o) or "") for m in (json_module, textwrap, string, collections,
                                                             pathlib)
            for n, o in sorted(vars(m).items())
            if not n.startswith("_") and (inspect.isfunction(o) or inspect.isclass(o)) and inspect.getdoc(o)]
    root.mkdir(parents=True, exist_ok=True)
    with (root / "docs.jsonl").open("w") as f:
        for i in range(samples):
            label, text = docs[i % len(docs)]
            f.write(json.dumps({"id": str(i), "text": text, "label": label}) + "\n")
    return root


def _median_seconds(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stats_time(*, samples: int = 10_000, rounds: int = 3, work: Path | None = None,
               client: Any = None, folder: str | None = None) -> dict[str, float]:
    """Seconds per 10,000 samples to compute a version's statistics: ``images``, ``table`` and
    ``text`` locally (the server's computation), and ``server_cold`` / ``server_warm`` through
    ``client`` (an :class:`assethub.client.Client`) with a new dataset in ``folder``."""
    from assethub import datastats

    per = 10_000 / samples
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        base = Path(tmp)
        data = {"images": (make_images(base / "images", samples), "dir"),
                "table": (make_table(base / "table", samples), "dir"),
                "text": (make_text(base / "text", samples), "json")}
        for name, (root, fmt) in data.items():
            out[name] = per * _median_seconds(lambda r=root, f=fmt: datastats.compute(
                r, asset="bench/dataset/b/n", commit_id="bench", data_format=f), rounds)
        if client is not None and folder:
            from assethub.wire import DatasetMeta

            asset = f"{folder}/stats-{uuid.uuid4().hex[:8]}"
            client.create_asset(asset, dataset=DatasetMeta("image_classification", "dir"))
            commit = client.upload(f"{asset}:main", data["images"][0], message="bench").id
            t = time.perf_counter()
            cold = client.stats(f"{asset}:{commit}")
            out["server_cold"] = per * (time.perf_counter() - t)
            t = time.perf_counter()
            warm = client.stats(f"{asset}:{commit}")
            out["server_warm"] = per * (time.perf_counter() - t)
            assert not cold.cached and warm.cached and warm.samples == samples
    return out


def result_line(result: dict[str, float]) -> str:
    return "RESULT stats_per_10k_s " + " ".join(f"{k}={v:.3f}" for k, v in result.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--url", help="an Asset Hub server, to measure through it too")
    ap.add_argument("--token", help="a token of a user with edit on --folder")
    ap.add_argument("--folder", help="<owner>/dataset/<folder> where a bench dataset is made")
    args = ap.parse_args()
    client = None
    if args.url:
        from assethub.client import Client

        client = Client(args.url, args.token)
    result = stats_time(samples=args.samples, rounds=args.rounds, client=client, folder=args.folder)
    for k, v in result.items():
        print(f"{k:12} {v:8.3f} s per 10,000 samples")
    print(result_line(result))


if __name__ == "__main__":
    main()
