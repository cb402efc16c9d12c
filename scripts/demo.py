"""The storage demo behind `make demo`: real data, real lakeFS, Git-like history.

1. starts (or finds) the embedded lakeFS server,
2. turns scikit-learn's digits into PNG files in class folders and commits them to the
   dataset ``demo/dataset/image-classification/digits``, tagged ``v1``,
3. creates the model ``demo/model/image-classification/digits-logreg`` with two branches,
   commits a trained model to each, merges the better one into ``main``,
4. prints the log, the tags and the diff.

The demo's own assets are deleted and created afresh on every run, so it can be repeated.
"""

from __future__ import annotations

import json
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assethub.storage import Storage
from infra import lakefs

DATASET = "demo/dataset/image-classification/digits"
MODEL = "demo/model/image-classification/digits-logreg"
console = Console()


def write_digits(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as 32x32 grayscale PNGs under train/<label>/ and test/<label>/ (the `dir` format)."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (img, label) in enumerate(zip(xs, ys, strict=True)):
            out = root / split / str(label) / f"{i:04d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            pixels = (img * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(out)
    (root / "README.md").write_text(
        "# digits\n\n1,797 handwritten digits (scikit-learn), 32x32 PNG, one folder per class.\n"
        "Split: independent test set in `test/`.\n"
    )
    return x_train, x_test, y_train, y_test


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the PNGs back, as training code would from a downloaded version."""
    xs, ys = [], []
    for png in sorted((root / split).glob("*/*.png")):
        img = Image.open(png).resize((8, 8), Image.NEAREST)
        xs.append(np.asarray(img, dtype=np.float32).ravel() / 255.0)
        ys.append(int(png.parent.name))
    return np.stack(xs), np.array(ys)


def train_model(data: Path, out: Path, *, c: float) -> float:
    x_train, y_train = load_split(data, "train")
    x_test, y_test = load_split(data, "test")
    clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
    accuracy = float(clf.score(x_test, y_test))
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pkl").write_bytes(pickle.dumps(clf))
    (out / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "C": c}, indent=2))
    (out / "README.md").write_text(
        f"# digits-logreg\n\nLogistic regression, C={c}. Test accuracy {accuracy:.4f}.\n"
    )
    return accuracy


def main() -> int:
    server = lakefs.start()
    storage = Storage(server.endpoint, server.access_key_id, server.secret_access_key,
                      progress=True)
    for path in (DATASET, MODEL):
        if storage.asset_exists(path):
            storage.delete_asset(path)
    work = Path(tempfile.mkdtemp(prefix="assethub-demo-"))

    console.rule("[bold]dataset")
    storage.create_asset(DATASET)
    write_digits(work / "digits")
    c = storage.upload(f"{DATASET}:main", work / "digits", message="Add scikit-learn digits",
                       metadata={"source": "sklearn.datasets.load_digits", "format": "dir"})
    storage.create_tag(DATASET, "v1")
    readme = work / "digits" / "README.md"
    readme.write_text(readme.read_text() + "\nLicense: BSD-3-Clause (scikit-learn).\n")
    storage.upload(f"{DATASET}:main", readme, path="README.md", message="Add license to README")
    n_files = len(storage.list_objects(f"{DATASET}:v1"))
    console.print(f"committed {n_files} files to {DATASET}:main as {c.id[:12]}, tagged v1")

    console.rule("[bold]model")
    storage.create_asset(MODEL)
    data = work / "download"
    got = storage.download(f"{DATASET}:v1", data)
    console.print(f"downloaded {DATASET}:v1 ({got.files} files, {got.bytes_total} bytes)")
    acc = train_model(data, work / "m-main", c=0.1)
    storage.upload(f"{MODEL}:main", work / "m-main",
                   message=f"Train logistic regression C=0.1 (accuracy {acc:.4f})",
                   metadata={"dataset": f"{DATASET}:{got.commit_id}", "accuracy": f"{acc:.4f}"})
    results = {}
    for branch, cval in (("exp-c1", 1.0), ("exp-c10", 10.0)):
        storage.create_branch(MODEL, branch)
        acc_b = train_model(data, work / f"m-{branch}", c=cval)
        storage.upload(f"{MODEL}:{branch}", work / f"m-{branch}",
                       message=f"Train logistic regression C={cval} (accuracy {acc_b:.4f})",
                       metadata={"dataset": f"{DATASET}:{got.commit_id}",
                                 "accuracy": f"{acc_b:.4f}"})
        results[branch] = acc_b
        console.print(f"branch {branch}: C={cval} accuracy {acc_b:.4f}")
    best = max(results, key=lambda b: results[b])
    storage.merge(MODEL, best, message=f"Merge {best}: best test accuracy {results[best]:.4f}")
    storage.create_tag(MODEL, "v1")
    console.print(f"merged {best} into main (main had {acc:.4f}) and tagged v1")

    console.rule("[bold]log of " + MODEL + ":main")
    log = Table("commit", "when", "message", "metadata")
    for commit in storage.log(f"{MODEL}:main"):
        log.add_row(commit.id[:12], commit.created.strftime("%H:%M:%S"), commit.message,
                    ", ".join(f"{k}={v}" for k, v in commit.metadata.items()))
    console.print(log)

    tags = Table("asset", "tag", "commit")
    for path in (DATASET, MODEL):
        for t in storage.list_tags(path):
            tags.add_row(path, t.name, t.commit_id[:12])
    console.print(tags)
    branches = Table("branch", "commit")
    for b in storage.list_branches(MODEL):
        branches.add_row(b.name, b.commit_id[:12])
    console.print(branches)

    for left, right in ((f"{MODEL}:main~1", f"{MODEL}:main"), (f"{DATASET}:v1", f"{DATASET}:main")):
        console.rule(f"[bold]diff {left} .. {right}")
        diff = Table("change", "path", "size")
        for d in storage.diff(left, right):
            diff.add_row(d.change, d.path, str(d.size))
        console.print(diff if diff.row_count else "(no changes)")
    console.print(f"lakeFS UI: {server.endpoint}/repositories/{storage.repository(MODEL)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
