"""The dataset side of the digits classifier: find, split and load the PNG files; score predictions.

Only numpy and Pillow here, so a bad dataset is reported before torch & co. are imported.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from assethub.runtime import JobContext

IMAGE_SIZE = 32  # the models take (N, 1, 32, 32) float32 pixel/255


class DatasetError(ValueError):
    """The dataset is not what this code expects; the message says what was wrong."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the job with one clear line on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@dataclass(frozen=True)
class Image:
    path: Path
    key: str  # the path relative to the dataset, e.g. "test/7/0012.png"
    label: str  # the class folder's name


def class_order(names: set[str] | list[str]) -> list[str]:
    """Class names in a stable order: numerically when every name is a number ("2" < "10")."""
    names = set(names)
    if all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def find_images(root: Path) -> list[Image]:
    """Every PNG file under ``<class>/`` or ``<split>/<class>/``, sorted by path."""
    if not root.is_dir():
        raise DatasetError(f"ASSETHUB_DATASET_DIR={root} is not a directory")
    images = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        rel = path.relative_to(root)
        if len(rel.parts) not in (2, 3):  # <class>/<file> or <split>/<class>/<file>
            raise DatasetError(f"{rel.as_posix()} is not in a <class>/ or <split>/<class>/ folder "
                               f"of ASSETHUB_DATASET_DIR={root}")
        images.append(Image(path, rel.as_posix(), rel.parts[-2]))
    if not images:
        raise DatasetError(f"no PNG files under <class>/ or <split>/<class>/ folders in "
                           f"ASSETHUB_DATASET_DIR={root} (expected the `dir` format, e.g. 7/0001.png "
                           "or test/7/0001.png)")
    return images


def split(ctx: JobContext, images: list[Image]) -> tuple[list[Image], list[Image]]:
    """(training images, test images) by the dataset's split (``ctx.split`` of assethub.runtime)."""
    train, test = ctx.split.partition(images, key=lambda im: im.key)
    where = f"ASSETHUB_DATASET_DIR={ctx.dataset_dir} with ASSETHUB_SPLIT={ctx.split}"
    if not test:
        raise DatasetError(f"the test split is empty ({where}): no PNG files under the test set path")
    if not train:
        raise DatasetError(f"the training split is empty ({where})")
    return train, test


def load(images: list[Image], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (N, 1, 32, 32) of pixel/255, y int64 class indices into ``classes``)."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    index = {c: i for i, c in enumerate(classes)}
    x = np.empty((len(images), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    y = np.empty(len(images), dtype=np.int64)
    for i, im in enumerate(images):
        if im.label not in index:
            raise DatasetError(f"{im.key}: class {im.label!r} is not one the model knows "
                               f"({', '.join(classes)})")
        try:
            with PILImage.open(im.path) as img:
                gray = img.convert("L")
                if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
                    gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), PILImage.BILINEAR)
                x[i, 0] = np.asarray(gray, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as e:
            raise DatasetError(f"{im.key} is not a readable PNG image: {e}") from None
        y[i] = index[im.label]
    return x, y


def classification_metrics(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """accuracy, loss (mean negative log-likelihood), macro_f1 and n_test of predicted probabilities."""
    p = np.asarray(probabilities, dtype=np.float64)
    predicted = p.argmax(axis=1)
    likelihood = np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)
    f1 = []
    for c in np.unique(y):
        tp = float(np.sum((predicted == c) & (y == c)))
        fp = float(np.sum((predicted == c) & (y != c)))
        fn = float(np.sum((predicted != c) & (y == c)))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": round(float(np.mean(predicted == y)), 6),
            "loss": round(float(-np.mean(np.log(likelihood))), 6),
            "macro_f1": round(float(np.mean(f1)), 6),
            "n_test": len(y)}


def confusion_report(probabilities: np.ndarray, y: np.ndarray, classes: list[str]) -> str:
    """A Markdown table: per class, how many test images there are and how many were right."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    rows = []
    for i, name in enumerate(classes):
        n = int(np.sum(y == i))
        if n:
            right = int(np.sum((y == i) & (predicted == i)))
            rows.append(f"| {name} | {n} | {right} | {right / n:.3f} |")
    return "| class | images | correct | accuracy |\n|---|---|---|---|\n" + "\n".join(rows)
