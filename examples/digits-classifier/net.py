"""The digits network and the MLflow model that serves it.

This file is saved with the model (``code_paths``), so loading the model needs only torch,
numpy and MLflow, not this repository and not Lightning.

Model input: float32 array (N, 1, 32, 32) of grayscale pixel/255.
Model output: float32 array (N, n_classes) of class probabilities (classes in ``config.json``).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import torch
from torch import nn

PREDICT_BATCH = 512  # bounded memory; the same images in the same order always score the same


class DigitsNet(nn.Module):
    """A small CNN: three 3x3 convolutions (32 -> 16 -> 8 pixels), then a linear layer."""

    def __init__(self, n_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * w * 4 * 4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def predict_proba(net: nn.Module, x: np.ndarray) -> np.ndarray:
    """Class probabilities (N, n_classes) for images x (N, 1, 32, 32), on the CPU."""
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), PREDICT_BATCH):
            batch = torch.from_numpy(np.ascontiguousarray(x[start:start + PREDICT_BATCH]))
            out.append(torch.softmax(net(batch), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def save_weights(net: DigitsNet, classes: list[str], width: int, directory: Path) -> dict[str, str]:
    """Write weights.pt and config.json into ``directory``; the MLflow artifacts that name them."""
    directory.mkdir(parents=True, exist_ok=True)
    weights, config = directory / "weights.pt", directory / "config.json"
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, weights)
    config.write_text(json.dumps({"classes": classes, "width": width, "input_shape": [1, 32, 32]},
                                 indent=2) + "\n")
    return {"weights": str(weights), "config": str(config)}


def load_weights(weights: Path | str, config: Path | str) -> tuple[DigitsNet, list[str], int]:
    """(network with the saved weights, class names, width) from weights.pt and config.json."""
    cfg = json.loads(Path(config).read_text())
    net = DigitsNet(len(cfg["classes"]), int(cfg["width"]))
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net, list(cfg["classes"]), int(cfg["width"])


# MLflow warns (always, whatever the warning filters say) when predict() has no type hints it can
# turn into a schema; this model's schema is the explicit signature it is saved with.
with contextlib.redirect_stderr(io.StringIO()):

    class DigitsClassifier(mlflow.pyfunc.PythonModel):
        """MLflow pyfunc: images in, class probabilities out."""

        def load_context(self, context: Any) -> None:
            artifacts = context.artifacts
            self.net, self.classes, _ = load_weights(artifacts["weights"], artifacts["config"])
            self.net.eval()

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # no hints, see above
            x = np.asarray(model_input, dtype=np.float32)
            if x.ndim == 3:  # (N, 32, 32): one channel implied
                x = x[:, None]
            if x.ndim != 4 or x.shape[1:] != (1, 32, 32):
                raise ValueError(f"expected images of shape (N, 1, 32, 32), got {x.shape}")
            return predict_proba(self.net, x)
