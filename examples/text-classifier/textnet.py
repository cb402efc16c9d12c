"""The text network, its tokenizer and the MLflow model that serves it.

This file is saved with the model (``code_paths``), so loading the model needs only torch,
numpy, pandas and MLflow, not this repository and not Lightning.

Words and word pairs are hashed into a fixed number of buckets (the hashing trick: no
vocabulary file), averaged by an EmbeddingBag and classified by a linear layer.

Model input: a pandas DataFrame with a ``text`` column (or a list of strings).
Model output: a DataFrame with ``label`` (the most likely class) and ``probabilities``
(class -> probability) per text.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import zlib
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from torch import nn

PREDICT_BATCH = 256  # bounded memory; the same texts in the same order always score the same
_WORD = re.compile(r"[a-z0-9_]+")


def token_ids(text: str, buckets: int) -> list[int]:
    """Bucket ids of the lower-cased words and adjacent word pairs of ``text``.

    crc32, not hash(): Python salts str hashes per process, and ids must never change.
    """
    words = _WORD.findall(text.lower())
    tokens = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return [zlib.crc32(t.encode()) % buckets for t in tokens]


def bags(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat ids, offsets): the input of ``nn.EmbeddingBag`` for a batch of texts."""
    flat = torch.tensor([i for seq in ids for i in seq], dtype=torch.long)
    offsets = torch.tensor([0] + [len(seq) for seq in ids[:-1]], dtype=torch.long).cumsum(0)
    return flat, offsets


class TextNet(nn.Module):
    """Mean of hashed word/bigram embeddings, then a linear layer."""

    def __init__(self, n_classes: int, buckets: int = 2**15, dim: int = 32) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.head = nn.Linear(dim, n_classes)

    def forward(self, flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(flat, offsets))


def predict_proba(net: TextNet, texts: list[str], buckets: int) -> np.ndarray:
    """Class probabilities (N, n_classes) for ``texts``, on the CPU."""
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), PREDICT_BATCH):
            chunk = [token_ids(t, buckets) for t in texts[start:start + PREDICT_BATCH]]
            out.append(torch.softmax(net(*bags(chunk)), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, net.head.out_features), dtype=np.float32)


def save_weights(net: TextNet, classes: list[str], buckets: int, dim: int, directory: Path) -> dict[str, str]:
    """Write weights.pt and config.json into ``directory``; the MLflow artifacts that name them."""
    directory.mkdir(parents=True, exist_ok=True)
    weights, config = directory / "weights.pt", directory / "config.json"
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, weights)
    config.write_text(json.dumps({"classes": classes, "buckets": buckets, "dim": dim}, indent=2) + "\n")
    return {"weights": str(weights), "config": str(config)}


def load_weights(weights: Path | str, config: Path | str) -> tuple[TextNet, dict[str, Any]]:
    """(network with the saved weights, its config: classes, buckets, dim)."""
    cfg = json.loads(Path(config).read_text())
    net = TextNet(len(cfg["classes"]), int(cfg["buckets"]), int(cfg["dim"]))
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net, cfg


def texts_of(model_input: Any) -> list[str]:
    """The texts in what a caller may pass: a DataFrame with a ``text`` column (or a single
    column), a Series, a dict {"text": [...]}, a list of strings, or one string."""
    if isinstance(model_input, pd.DataFrame):
        if "text" in model_input.columns:
            column = model_input["text"]
        elif len(model_input.columns) == 1:
            column = model_input.iloc[:, 0]
        else:
            raise ValueError(f"expected a 'text' column, got columns {list(model_input.columns)}")
        values = column.tolist()
    elif isinstance(model_input, dict):
        values = model_input.get("text", [])
        values = [values] if isinstance(values, str) else list(values)
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(np.asarray(model_input, dtype=object).ravel())
    return ["" if v is None else str(v) for v in values]


# MLflow warns (always, whatever the warning filters say) when predict() has no type hints it can
# turn into a schema; this model's schema is the explicit signature it is saved with.
with contextlib.redirect_stderr(io.StringIO()):

    class TextClassifier(mlflow.pyfunc.PythonModel):
        """MLflow pyfunc: texts in, label and class probabilities out."""

        def load_context(self, context: Any) -> None:
            artifacts = context.artifacts
            self.net, config = load_weights(artifacts["weights"], artifacts["config"])
            self.classes, self.buckets = list(config["classes"]), int(config["buckets"])
            self.net.eval()

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # no hints, see above
            p = predict_proba(self.net, texts_of(model_input), self.buckets)
            return pd.DataFrame({
                "label": [self.classes[i] for i in p.argmax(axis=1)] if len(p) else [],
                "probabilities": [dict(zip(self.classes, map(float, row), strict=True)) for row in p],
            })
