"""Train the digits CNN with PyTorch Lightning, or continue training a base model.

Run by Asset Hub with the training-code contract (see README.md):

    ASSETHUB_DATASET_DIR   PNG files under <class>/ or <split>/<class>/
    ASSETHUB_SPLIT         a training ratio, or the test set's path (e.g. test)
    ASSETHUB_OUTPUT_DIR    gets model/, an MLflow model
    ASSETHUB_BASE_MODEL_DIR  set: continue from <base>/model's weights (job continue_train)
    ASSETHUB_PARAMS        {"epochs", "lr", "batch_size", "seed", "width"}
    ASSETHUB_METRICS_FILE  gets the test metrics: accuracy, loss, macro_f1, n_test
    MLFLOW_TRACKING_URI + MLFLOW_RUN_ID  set: params and per-epoch metrics go into that run
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import data

from assethub import runtime

HERE = Path(__file__).resolve().parent
DEFAULTS: dict[str, Any] = {"epochs": 4, "lr": 0.01, "batch_size": 64, "seed": 42, "width": 16}


def settings(ctx: runtime.JobContext) -> dict[str, Any]:
    """The parameters, typed and checked."""
    p = {name: ctx.param(name, default) for name, default in DEFAULTS.items()}
    if p["epochs"] < 0:
        raise data.DatasetError(f"epochs must be 0 or more, not {p['epochs']}")
    if p["lr"] < 0:
        raise data.DatasetError(f"lr must be 0 or more, not {p['lr']}")
    if p["batch_size"] < 1 or p["width"] < 1:
        raise data.DatasetError("batch_size and width must be at least 1")
    return p


def base_model_dir(ctx: runtime.JobContext) -> Path | None:
    """The MLflow model directory to continue from (``<base>/model``), or None for a fresh start."""
    if ctx.base_model_dir is None:
        if ctx.job == "continue_train":
            raise data.DatasetError("ASSETHUB_JOB=continue_train needs ASSETHUB_BASE_MODEL_DIR")
        return None
    for candidate in (ctx.base_model_dir / "model", ctx.base_model_dir):
        if (candidate / "MLmodel").is_file():
            return candidate
    raise data.DatasetError(f"ASSETHUB_BASE_MODEL_DIR={ctx.base_model_dir} holds no MLflow model "
                            "(expected model/MLmodel)")


def base_artifacts(model_dir: Path) -> tuple[Path, Path]:
    """(weights.pt, config.json) of a model this code saved."""
    import yaml

    flavor = (yaml.safe_load((model_dir / "MLmodel").read_text()) or {}).get("flavors", {})
    artifacts = flavor.get("python_function", {}).get("artifacts", {})
    try:
        return (model_dir / artifacts["weights"]["path"], model_dir / artifacts["config"]["path"])
    except (KeyError, TypeError):
        raise data.DatasetError(f"the base model {model_dir} was not saved by this code "
                                "(no weights/config artifacts in its MLmodel)") from None


class Tracking:
    """Logging into the job's existing MLflow run; does nothing when the job has none."""

    def __init__(self, ctx: runtime.JobContext) -> None:
        self.client: Any = None
        self.run_id = ctx.mlflow_run_id
        if ctx.mlflow_tracking_uri and ctx.mlflow_run_id:
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(ctx.mlflow_tracking_uri)
            self.client.get_run(self.run_id)  # fails here, clearly, if the run does not exist

    def params(self, values: dict[str, Any]) -> None:
        if self.client is None:
            return
        from mlflow.entities import Param

        # The runner may have logged the job's parameters already; MLflow refuses to change one.
        logged = self.client.get_run(self.run_id).data.params
        new = {k: str(v) for k, v in values.items() if k not in logged}
        for k in sorted(k for k in values if k in logged and logged[k] != str(values[k])):
            print(f"note: MLflow param {k} is {logged[k]!r} in the run, {values[k]!r} here", flush=True)
        if new:
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in new.items()])

    def metrics(self, values: dict[str, float], step: int) -> None:
        if self.client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])


def lightning_device(env: dict[str, str] | None = None) -> tuple[str, int]:
    """Lightning's (accelerator, devices) for the job's device: ``DEVICE`` (or ``ASSETHUB_DEVICE``)
    ``cuda`` trains on ``ASSETHUB_GPUS`` GPUs (1 when unset); ``cpu``, or nothing set, on the CPU."""
    import os

    env = dict(os.environ) if env is None else env
    device = (env.get("DEVICE") or env.get("ASSETHUB_DEVICE") or "cpu").strip().lower()
    if device != "cuda":
        return "cpu", 1
    try:
        return "gpu", max(1, int(env.get("ASSETHUB_GPUS") or 1))
    except ValueError:
        return "gpu", 1


def train(p: dict[str, Any], base: Path | None,
          train_set: tuple[Any, Any], test_set: tuple[Any, Any], classes: list[str],
          tracking: Tracking) -> Any:
    """The trained network (on the CPU)."""
    import net as netlib
    import torch

    torch.manual_seed(p["seed"])  # the initial weights
    if base is not None:
        weights, config = base_artifacts(base)
        network, _, _ = netlib.load_weights(weights, config)
        print(f"continuing from the base model's weights ({base})", flush=True)
    else:
        network = netlib.DigitsNet(len(classes), p["width"])
    if p["epochs"] == 0:
        print("epochs=0: no training, the model is saved as it starts", flush=True)
        return network

    import lightning.pytorch as pl
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    quiet()

    class LitDigits(pl.LightningModule):
        def __init__(self, network: torch.nn.Module, lr: float) -> None:
            super().__init__()
            self.net, self.lr = network, lr

        def _loss(self, batch: Any) -> tuple[Any, Any]:
            x, y = batch
            logits = self.net(x)
            return F.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss, _ = self._loss(batch)
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[1]))
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            loss, accuracy = self._loss(batch)
            self.log_dict({"test_loss": loss, "test_accuracy": accuracy}, batch_size=len(batch[1]))

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.net.parameters(), lr=self.lr)

    class EpochReport(pl.Callback):
        """One line per epoch on stdout, and the epoch's metrics into the MLflow run."""

        def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            epoch = trainer.current_epoch + 1
            values = {k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items())}
            shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
            print(f"epoch {epoch}/{trainer.max_epochs}  {shown}  ({time.perf_counter() - self.started:.1f}s)",
                  flush=True)
            tracking.metrics(values, step=epoch)

    pl.seed_everything(p["seed"], workers=True, verbose=False)  # all else random; shuffling has its generator

    x, y = train_set
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=p["batch_size"],
                        shuffle=True, generator=torch.Generator().manual_seed(p["seed"]))
    val = DataLoader(TensorDataset(torch.from_numpy(test_set[0]), torch.from_numpy(test_set[1])),
                     batch_size=512)
    accelerator, devices = lightning_device()
    with tempfile.TemporaryDirectory(prefix="lightning-") as scratch:  # nothing left in the code dir
        trainer = pl.Trainer(max_epochs=p["epochs"], accelerator=accelerator, devices=devices,
                             deterministic="warn",
                             logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=scratch,
                             callbacks=[EpochReport()])
        print(f"training on {trainer.strategy.root_device}: {len(y)} images, {p['epochs']} epoch(s), "
              f"lr {p['lr']}, batch size {p['batch_size']}, seed {p['seed']}", flush=True)
        trainer.fit(LitDigits(network, p["lr"]), loader, val)
    return network.cpu()


def save(network: Any, classes: list[str], width: int, out: Path, example: Any) -> Path:
    """``out``/model as an MLflow pyfunc model that needs neither this repository nor Lightning."""
    import mlflow
    import mlflow.pyfunc
    import net as netlib
    import numpy as np
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    quiet()
    target = out / "model"
    if target.exists():
        shutil.rmtree(target)
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1, 32, 32))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, len(classes)))]))
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.save_model(
            path=str(target), python_model=str(HERE / "mlflow_model.py"),
            artifacts=netlib.save_weights(network, classes, width, Path(tmp)),
            code_paths=[str(HERE / "net.py")], signature=signature, input_example=example,
            pip_requirements=[f"mlflow=={mlflow.__version__}", f"torch=={torch.__version__.split('+')[0]}",
                              f"numpy=={np.__version__}"],
            metadata={"classes": classes, "task": "image_classification",
                      "input": "float32 (N, 1, 32, 32), pixel/255", "output": "float32 (N, classes)"})
    return target


def quiet() -> None:
    """Keep the job's log to our own lines: no progress bars, tips or notices from the libraries.

    Called again after each library import, since Lightning and MLflow set their loggers' levels
    when imported.
    """
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("lightning.pytorch", "lightning.fabric", "mlflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in ("does not have many workers", "GPU available but not used", "Add type hints",
                    r"isinstance\(treespec, LeafSpec\)"):
        warnings.filterwarnings("ignore", message=f".*{message}")


def main() -> None:
    started = time.perf_counter()
    try:
        ctx = runtime.context()
        p = settings(ctx)
        base = base_model_dir(ctx)
        images = data.find_images(ctx.dataset_dir)
        train_images, test_images = data.split(ctx, images)
        if base is not None:
            import json

            config = json.loads(base_artifacts(base)[1].read_text())
            classes, p["width"] = list(config["classes"]), int(config["width"])
        else:
            classes = data.class_order({im.label for im in images})
        train_set = data.load(train_images, classes)
        test_set = data.load(test_images, classes)
    except (runtime.ContractError, data.DatasetError) as e:
        data.fail(str(e))
    print(f"dataset: {len(train_images)} training and {len(test_images)} test images, "
          f"{len(classes)} classes; split {ctx.split}", flush=True)

    quiet()
    tracking = Tracking(ctx)
    tracking.params({**DEFAULTS, **ctx.params, "width": p["width"], "job": ctx.job,
                     "n_train": len(train_images), "n_test": len(test_images)})
    network = train(p, base, train_set, test_set, classes, tracking)
    target = save(network, classes, p["width"], ctx.output_dir, test_set[0][:2])

    import mlflow.pyfunc  # score the saved model, exactly as evaluate.py will

    probabilities = mlflow.pyfunc.load_model(str(target)).predict(test_set[0])
    metrics = data.classification_metrics(probabilities, test_set[1])
    ctx.write_metrics(metrics)
    print(f"test accuracy {metrics['accuracy']:.4f}  loss {metrics['loss']:.4f}  "
          f"macro_f1 {metrics['macro_f1']:.4f}  on {metrics['n_test']} images; model saved to {target} "
          f"({time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
