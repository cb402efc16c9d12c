"""Helpers for `make demo` (scripts/demo.sh): make the sample data and train a small model.

    python scripts/demo_steps.py digits OUT          # scikit-learn digits as PNGs, dir format
    python scripts/demo_steps.py train DATA OUT --c C  # logistic regression on a downloaded version
    python scripts/demo_steps.py best DIR...         # the model directory with the best accuracy
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_digits(root: Path) -> int:
    """Digits as 32x32 grayscale PNGs under train/<label>/ and test/<label>/ (the `dir` format)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    n = 0
    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (img, label) in enumerate(zip(xs, ys, strict=True)):
            out = root / split / str(label) / f"{i:04d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            pixels = (img * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(out)
            n += 1
    (root / "README.md").write_text(
        "# digits\n\n1,797 handwritten digits (scikit-learn), 32x32 PNG, one folder per class.\n"
        "Split: independent test set in `test/`.\n"
    )
    return n


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for png in sorted((root / split).glob("*/*.png")):
        img = Image.open(png).resize((8, 8), Image.NEAREST)
        xs.append(np.asarray(img, dtype=np.float32).ravel() / 255.0)
        ys.append(int(png.parent.name))
    return np.stack(xs), np.array(ys)


def train(data: Path, out: Path, c: float) -> float:
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = load_split(data, "train")
    x_test, y_test = load_split(data, "test")
    clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
    accuracy = float(clf.score(x_test, y_test))
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pkl").write_bytes(pickle.dumps(clf))
    (out / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "C": c}, indent=2) + "\n")
    (out / "README.md").write_text(
        f"# digits-logreg\n\nLogistic regression, C={c}. Test accuracy {accuracy:.4f}.\n")
    return accuracy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("digits")
    d.add_argument("out", type=Path)
    t = sub.add_parser("train")
    t.add_argument("data", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--c", type=float, default=1.0)
    b = sub.add_parser("best")
    b.add_argument("dirs", type=Path, nargs="+")
    a = p.parse_args()
    if a.cmd == "digits":
        print(f"wrote {write_digits(a.out)} PNG files to {a.out}")
    elif a.cmd == "train":
        print(f"C={a.c}: test accuracy {train(a.data, a.out, a.c):.4f}")
    else:
        scores = {d: json.loads((d / "metrics.json").read_text())["accuracy"] for d in a.dirs}
        print(max(scores, key=lambda k: scores[k]).name)


if __name__ == "__main__":
    main()
