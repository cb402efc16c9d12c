"""Convert an MLflow model to ONNX and measure it against the original; run in the sandbox.

    python -m tasks.export_model      # by flows.export, under the job contract:

    ASSETHUB_BASE_MODEL_DIR  the version to export (``model/MLmodel``)
    ASSETHUB_DATASET_DIR     the dataset version whose test split the check scores (may be empty)
    ASSETHUB_SPLIT           the dataset's split (assethub.runtime.Split)
    ASSETHUB_PARAMS          {"format": "onnx", "quantize": "" | "dynamic-int8", ...}
    ASSETHUB_OUTPUT_DIR      gets ``model/`` (an MLflow ONNX model) and ``export.json``

Loading a model runs its code (pickles, models from code), so this runs where user code runs:
in the job's sandbox, with no token and no network. ``export.json`` holds the check's figures,
the flavor and the exporter; a model that cannot be exported exits 3 with ``{"refused": why}``
there (and nothing in ``model/``). No Prefect here.

What is exported:
- scikit-learn models (the ``sklearn`` flavor) with skl2onnx (probabilities as a plain tensor);
- PyTorch models: the ``pytorch`` flavor's module, or a pyfunc ``PythonModel`` holding exactly one
  ``torch.nn.Module`` whose outputs (or their softmax, for a classifier returning probabilities)
  are its predictions on the input example; with ``torch.onnx.export(dynamo=True)`` (the legacy
  TorchScript exporter when that fails), the batch dimension dynamic.
Anything else is refused, naming the flavor.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

REFUSED = 3
# the module's outputs are the model's predictions when they differ by no more than float32 rounding
SAME_OUTPUTS = 1e-4
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
LABEL_COLUMNS = ("label", "target", "class", "y")


class Refused(Exception):
    """This model cannot be exported; the message says why."""


@dataclass
class Exported:
    onnx_path: Path
    flavor: str
    exporter: str
    original: Callable[[Any], np.ndarray]  # the original's outputs compared (probabilities or values)
    exported: Callable[[Any], np.ndarray]  # the same from the ONNX model, on the same input
    labels: Callable[[np.ndarray], list[str]]  # predicted class names from those outputs
    notes: dict[str, Any] = field(default_factory=dict)


def _out(payload: dict[str, Any]) -> None:
    out = Path(os.environ["ASSETHUB_OUTPUT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "export.json").write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def refuse(why: str) -> NoReturn:
    _out({"refused": why})
    print(f"error: {why}", file=sys.stderr, flush=True)
    sys.exit(REFUSED)


def model_dir() -> Path:
    base = Path(os.environ.get("ASSETHUB_BASE_MODEL_DIR", ""))
    for candidate in (base / "model", base):
        if (candidate / "MLmodel").is_file():
            return candidate
    raise Refused(f"the version holds no MLflow model (no model/MLmodel): only an MLflow model can be "
                  f"exported (files: {', '.join(sorted(p.name for p in base.iterdir())[:10]) or 'none'})")


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _classes_from(metadata: dict[str, Any] | None) -> list[str]:
    return [str(c) for c in ((metadata or {}).get("classes") or [])]


def _argmax_labels(classes: list[str]) -> Callable[[np.ndarray], list[str]]:
    def labels(outputs: np.ndarray) -> list[str]:
        idx = np.asarray(outputs).reshape(len(outputs), -1).argmax(axis=1)
        return [classes[i] if i < len(classes) else str(i) for i in idx]
    return labels


# -- PyTorch --------------------------------------------------------------------------------------
def _torch_modules(obj: Any) -> list[Any]:
    import torch

    return [v for v in vars(obj).values() if isinstance(v, torch.nn.Module)]


def _torch_export(module: Any, example: np.ndarray, dest: Path) -> str:
    """``module`` to ONNX at ``dest`` (one file, batch dimension dynamic); which exporter did it."""
    import torch

    module.eval()
    x = torch.from_numpy(np.ascontiguousarray(example))
    try:
        batch = torch.export.Dim("batch", min=1)
        torch.onnx.export(module, (x,), str(dest), dynamo=True, external_data=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_shapes=({0: batch},), verbose=False)
        return f"torch {torch.__version__.split('+')[0]} torch.onnx.export (dynamo)"
    except Exception as e:  # an op the new exporter cannot trace: the TorchScript one
        print(f"the dynamo exporter failed ({type(e).__name__}: {str(e)[:300]}); "
              "trying the TorchScript exporter", flush=True)
        dest.unlink(missing_ok=True)
    torch.onnx.export(module, (x,), str(dest), dynamo=False, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return f"torch {torch.__version__.split('+')[0]} torch.onnx.export (TorchScript)"


def _torch_outputs(module: Any, x: np.ndarray, softmax: bool) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        if softmax:
            out = torch.softmax(out, dim=1)
    return np.asarray(out.numpy())


def export_pyfunc_torch(source: Path, example: Any, dest: Path) -> Exported:
    import mlflow.pyfunc
    import torch

    pyfunc = mlflow.pyfunc.load_model(str(source))
    python_model = pyfunc.unwrap_python_model()
    modules = _torch_modules(python_model)
    kind = type(python_model).__name__
    if len(modules) != 1:
        raise Refused(f"the model is a custom pyfunc model ({kind}, flavor python_function) holding "
                      f"{'no' if not modules else len(modules)} torch module(s): ONNX export takes "
                      "scikit-learn models (sklearn flavor), PyTorch models (pytorch flavor), or a "
                      "PythonModel holding exactly one torch.nn.Module")
    if not isinstance(example, np.ndarray) or example.dtype.kind != "f":
        raise Refused(f"the model ({kind}) has no float tensor input example to export its torch module "
                      "with: save it with input_example=<float32 array>")
    x = example.astype(np.float32)
    module = modules[0].eval()
    predicted = np.asarray(pyfunc.predict(x), dtype=np.float32)
    softmax = None
    for use_softmax in (False, True):
        out = _torch_outputs(module, x, use_softmax)
        if out.shape == predicted.shape and float(np.max(np.abs(out - predicted))) <= SAME_OUTPUTS:
            softmax = use_softmax
            break
    if softmax is None:
        raise Refused(f"the model's predictions ({kind}, python_function) are not the outputs of its torch "
                      f"module {type(module).__name__} (nor their softmax) on the input example: its "
                      "predict() does more than the module, which ONNX would not carry over")
    exported = torch.nn.Sequential(module, torch.nn.Softmax(dim=1)) if softmax else module
    exporter = _torch_export(exported, x, dest)
    classes = _classes_from(pyfunc.metadata.metadata)
    return Exported(dest, "python_function (PythonModel holding a torch module)", exporter,
                    lambda a: np.asarray(pyfunc.predict(np.asarray(a, dtype=np.float32)), dtype=np.float32),
                    _onnx_runner(dest), _argmax_labels(classes),
                    {"softmax_appended": softmax, "module": type(module).__name__})


def export_pytorch(source: Path, example: Any, dest: Path) -> Exported:
    import mlflow.pytorch

    if not isinstance(example, np.ndarray) or example.dtype.kind != "f":
        raise Refused("the PyTorch model has no float tensor input example to export with: save it with "
                      "input_example=<float32 array>")
    module = mlflow.pytorch.load_model(str(source), map_location="cpu").eval()
    x = example.astype(np.float32)
    exporter = _torch_export(module, x, dest)
    from mlflow.models import Model

    classes = _classes_from(Model.load(str(source)).metadata)
    return Exported(dest, "pytorch", exporter, lambda a: _torch_outputs(module, a, False),
                    _onnx_runner(dest), _argmax_labels(classes))


# -- scikit-learn ---------------------------------------------------------------------------------
def export_sklearn(source: Path, example: Any, dest: Path) -> Exported:
    import mlflow.sklearn
    import pandas as pd
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    estimator = mlflow.sklearn.load_model(str(source))
    if example is None:
        raise Refused("the scikit-learn model has no input example to export with: "
                      "save it with input_example=")
    frame = example if isinstance(example, pd.DataFrame) else None
    features = frame.shape[1] if frame is not None else np.asarray(example).reshape(len(example), -1).shape[1]
    columns = list(frame.columns) if frame is not None else None
    proba = hasattr(estimator, "predict_proba")
    try:
        onnx_model = to_onnx(estimator, initial_types=[("input", FloatTensorType([None, features]))],
                             options={"zipmap": False} if proba else None, target_opset=None)
    except Exception as e:
        raise Refused(f"skl2onnx cannot convert this scikit-learn model ({type(estimator).__name__}): "
                      f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    dest.write_bytes(onnx_model.SerializeToString())
    import skl2onnx

    def as_input(a: Any) -> Any:
        return a[columns] if columns is not None and isinstance(a, pd.DataFrame) else a

    def matrix(a: Any) -> np.ndarray:
        return np.asarray(as_input(a), dtype=np.float32)

    session = _session(dest)
    names = [o.name for o in session.get_outputs()]
    classes = [str(c) for c in getattr(estimator, "classes_", [])]
    if proba:
        def original(a: Any) -> np.ndarray:
            return np.asarray(estimator.predict_proba(as_input(a)), dtype=np.float32)

        def exported(a: Any) -> np.ndarray:
            return np.asarray(session.run([names[-1]], {"input": matrix(a)})[0], dtype=np.float32)

        labels = _argmax_labels(classes)
    else:
        def original(a: Any) -> np.ndarray:
            return np.asarray(estimator.predict(as_input(a)), dtype=np.float32).reshape(len(a), -1)

        def exported(a: Any) -> np.ndarray:
            out = session.run([names[0]], {"input": matrix(a)})[0]
            return np.asarray(out, dtype=np.float32).reshape(len(a), -1)

        def labels(outputs: np.ndarray) -> list[str]:
            return [str(v) for v in np.asarray(outputs).reshape(-1)]

    return Exported(dest, "sklearn", f"skl2onnx {skl2onnx.__version__}", original, exported, labels,
                    {"estimator": type(estimator).__name__, "columns": columns,
                     "output": names[-1] if proba else names[0]})


# -- ONNX Runtime ---------------------------------------------------------------------------------
def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_runner(path: Path) -> Callable[[Any], np.ndarray]:
    def run(a: Any) -> np.ndarray:
        session = _session(path)
        name = session.get_inputs()[0].name
        return np.asarray(session.run(None, {name: np.asarray(a, dtype=np.float32)})[0], dtype=np.float32)
    return run


def quantize(exported: Exported, dest: Path) -> Exported:
    """Weights to int8 (onnxruntime's dynamic quantisation); the same comparisons, on the new file."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        quantize_dynamic(str(exported.onnx_path), str(dest), weight_type=QuantType.QInt8)
    except Exception as e:  # e.g. a scikit-learn graph of ai.onnx.ml operators only
        raise Refused(f"onnxruntime's dynamic int8 quantisation cannot quantise this {exported.flavor} model "
                      f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); export it without "
                      "--quantize") from None
    if exported.flavor == "sklearn":
        session = _session(dest)
        output = str(exported.notes["output"])
        columns = exported.notes.get("columns")

        def run(a: Any) -> np.ndarray:
            import pandas as pd

            x = a[columns] if columns is not None and isinstance(a, pd.DataFrame) else a
            return np.asarray(session.run([output], {"input": np.asarray(x, dtype=np.float32)})[0],
                              dtype=np.float32).reshape(len(a), -1)
        runner: Callable[[Any], np.ndarray] = run
    else:
        runner = _onnx_runner(dest)
    return Exported(dest, exported.flavor, f"{exported.exporter}, onnxruntime {onnxruntime.__version__} "
                    "quantize_dynamic (QInt8)", exported.original, runner, exported.labels, exported.notes)


# -- the test split -------------------------------------------------------------------------------
def _split() -> Any:
    from assethub.runtime import Split

    data = Path(os.environ.get("ASSETHUB_DATASET_DIR", ""))
    return Split.parse(os.environ.get("ASSETHUB_SPLIT", ""), data)


def test_images(example: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """The test split's images in the input example's shape (pixels / 255), and their classes."""
    from PIL import Image

    root = Path(os.environ.get("ASSETHUB_DATASET_DIR", ""))
    if not root.is_dir():
        return None
    files = [p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
             and len(p.relative_to(root).parts) in (2, 3)]
    if not files:
        return None
    _, test = _split().partition(files, key=lambda p: p.relative_to(root).as_posix())
    shape = example.shape[1:]
    if len(shape) == 3 and shape[0] in (1, 3):
        channels, (h, w) = shape[0], shape[1:]
    elif len(shape) == 2:
        channels, (h, w) = 0, shape
    else:
        return None
    x = np.empty((len(test), *shape), dtype=np.float32)
    for i, path in enumerate(test):
        with Image.open(path) as img:
            im = img.convert("L" if channels in (0, 1) else "RGB")
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
        x[i] = a if channels == 0 else (a[None] if channels == 1 else a.transpose(2, 0, 1))
    return x, [p.parent.name for p in test]


def test_rows(example: Any) -> tuple[Any, list[str]] | None:
    """The test split's rows of the dataset's tables, with the example's columns, and their labels."""
    import pandas as pd

    root = Path(os.environ.get("ASSETHUB_DATASET_DIR", ""))
    if not root.is_dir():
        return None
    frames, keys = [], []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (not path.is_file() or path.suffix.lower() not in TABLE_SUFFIXES
                or rel.name.lower().startswith("readme")):
            continue
        frame = pd.read_csv(path, sep=TABLE_SUFFIXES[path.suffix.lower()], encoding="utf-8-sig")
        frame.columns = [str(c).strip() for c in frame.columns]
        frames.append(frame)
        keys += [f"{rel.as_posix()}:{i}" for i in range(1, len(frame) + 1)]
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True)
    label = next((c for c in LABEL_COLUMNS if c in table.columns), None)
    columns = list(example.columns)
    if label is None or any(c not in table.columns for c in columns):
        return None
    split = _split()
    test = [i for i, key in enumerate(keys)
            if split.is_test(key.rsplit(":", 1)[0] if split.test_path is not None else key)]
    rows = table.iloc[test]
    x = rows[columns].astype({c: "float64" for c in columns if rows[c].dtype.kind in "biu"})
    return x, [str(v) for v in rows[label]]


# -- the check ------------------------------------------------------------------------------------
def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def measure(exported: Exported, example: Any, source: Path) -> dict[str, float]:
    figures = {"max_abs_diff_example": _max_abs(exported.original(example), exported.exported(example)),
               "size_original_bytes": float(dir_size(source)),
               "size_exported_bytes": float(exported.onnx_path.stat().st_size)}
    test = test_images(example) if isinstance(example, np.ndarray) else test_rows(example)
    if test is None:
        print("no test split in the dataset's shape: compared on the input example only", flush=True)
        return figures
    x, y = test
    if len(y) == 0:
        return figures
    a, b = exported.original(x), exported.exported(x)
    figures["max_abs_diff_test"] = _max_abs(a, b)
    figures["n_test"] = float(len(y))
    truth = np.asarray(y)
    acc_a = float(np.mean(np.asarray(exported.labels(a)) == truth))
    acc_b = float(np.mean(np.asarray(exported.labels(b)) == truth))
    figures.update(accuracy_original=acc_a, accuracy_exported=acc_b, accuracy_delta=acc_b - acc_a)
    return figures


def save(exported: Exported, source: Path, example: Any, out: Path) -> None:
    """The ONNX file as an MLflow ONNX model (pyfunc-servable) with the original's input example,
    input schema and metadata (e.g. its classes)."""
    import mlflow.onnx
    import onnx
    from mlflow.models import Model, ModelSignature

    original = Model.load(str(source))
    signature = None
    inputs = original.signature.inputs if original.signature is not None else None
    if inputs is not None and isinstance(example, np.ndarray):
        signature = ModelSignature(inputs=inputs)
    metadata = {**(original.metadata or {}), "assethub_export": {"flavor": exported.flavor,
                                                                 "exporter": exported.exporter}}
    mlflow.onnx.save_model(onnx.load(str(exported.onnx_path)), str(out), signature=signature,
                           input_example=example, metadata=metadata, save_as_external_data=False)


def main() -> int:
    started = time.perf_counter()
    params = json.loads(os.environ.get("ASSETHUB_PARAMS") or "{}")
    out = Path(os.environ["ASSETHUB_OUTPUT_DIR"])
    work = Path(os.environ.get("HOME") or "/tmp")
    try:
        import logging
        import warnings

        warnings.filterwarnings("ignore")
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        source = model_dir()
        from mlflow.models import Model

        info = Model.load(str(source))
        flavors = sorted(info.flavors)
        example = info.load_input_example(str(source))
        onnx_path = work / "model.onnx"
        if "onnx" in flavors:
            raise Refused("the version is an ONNX model already (flavor onnx): nothing to export")
        if "sklearn" in flavors:
            exported = export_sklearn(source, example, onnx_path)
        elif "pytorch" in flavors:
            exported = export_pytorch(source, example, onnx_path)
        elif str((info.flavors.get("python_function") or {}).get("loader_module", "")).startswith(
                "mlflow.pyfunc"):
            exported = export_pyfunc_torch(source, example, onnx_path)
        else:
            raise Refused(f"cannot export a model of flavor(s) {', '.join(flavors)}: ONNX export takes "
                          "scikit-learn models (sklearn flavor) and PyTorch models (pytorch flavor, or a "
                          "pyfunc PythonModel holding one torch module)")
        if params.get("quantize") == "dynamic-int8":
            exported = quantize(exported, work / "model.int8.onnx")
    except Refused as e:
        refuse(str(e))
    figures = measure(exported, example, source)
    save(exported, source, example, out / "model")
    _out({"figures": figures, "flavor": exported.flavor, "exporter": exported.exporter,
          "notes": exported.notes, "seconds": round(time.perf_counter() - started, 2)})
    print(f"exported ({exported.exporter}): " + ", ".join(f"{k} {v:.6g}" for k, v in sorted(figures.items())),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
