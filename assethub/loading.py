"""One call from a model version to a ready model, and ``assethub://`` model URIs for MLflow.

    import assethub
    model = assethub.load("alice/model/cls/net:v1")                  # MLflow pyfunc
    forest = assethub.load("alice/model/tab/iris:main", flavor="sklearn")   # the native object

    import mlflow.pyfunc                                              # any MLflow code
    model = mlflow.pyfunc.load_model("assethub://alice/model/cls/net@v1/model")

:func:`load` resolves the ref through the server (which checks that you may view the model),
downloads the version's MLflow model (``model/`` or the root, wherever ``MLmodel`` is) through
the SDK's content cache into a directory per commit — a second load of the same commit moves no
bytes — and loads it with MLflow. :class:`AssetHubArtifactRepository` is MLflow's artifact
repository for ``assethub://`` (entry point ``mlflow.artifact_repository``), built on
:mod:`assethub.fs`. MLflow is imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import posixpath
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assethub import errors
from assethub.refs import AssetKind, AssetRef

if TYPE_CHECKING:
    from assethub.client import Client

__all__ = ["load", "model_dir"]  # and AssetHubArtifactRepository, made on first use

#: what ``flavor=`` may name besides an MLflow flavor module (``sklearn``, ``pytorch`` ...)
_PYFUNC = ("pyfunc", "python_function")


def _ref(ref: str | AssetRef) -> AssetRef:
    if isinstance(ref, AssetRef):
        return ref
    if ref.startswith("assethub://"):
        from assethub.fs import parse_url

        return parse_url(ref).ref
    return AssetRef.parse(ref)


def model_dir(ref: str | AssetRef, *, client: Client | None = None) -> Path:
    """The local directory holding the MLflow model of a model version (``MLmodel`` at its
    top): the ref resolved through the server (your role checked), the files taken from the
    content cache, fetched only when missing; one directory per commit, made once."""
    from assethub.client import Client

    r = _ref(ref)
    if r.path.kind is not AssetKind.MODEL:
        raise errors.InvalidReferenceError(f"{r.path} is a dataset; load takes a model version "
                                           "(<owner>/model/<folder>/<name>:<ref>)",
                                           part="asset type", value=str(r))
    hub = client or Client()
    commit = hub.resolve(r)
    at = r.path.at(commit)
    key = hashlib.sha256(f"{hub.url}\n{r.path}".encode()).hexdigest()[:32]
    target = hub.cache.root / "models" / key / commit
    if (target / "MLmodel").is_file():
        return target
    paths = {o.path for o in hub.commit_files(at)}
    if "model/MLmodel" in paths:
        prefix = "model/"
    elif "MLmodel" in paths:
        prefix = ""
    else:
        raise errors.NotServableError(
            f"{r} (commit {commit[:12]}) holds no MLflow model (no model/MLmodel or MLmodel): "
            "train it with a job that saves one, or commit an MLflow model under model/",
            ref=str(r), reason="no model/MLmodel")
    partial = target.with_name(f".{commit}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    hub.download(at, partial, prefix=prefix)
    try:
        partial.rename(target)
    except OSError:  # another process made it first: theirs is the same commit
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / "MLmodel").is_file():
            raise
    return target


def _flavors(local: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load((local / "MLmodel").read_text()) or {}
    except yaml.YAMLError:
        data = {}
    flavors = data.get("flavors") if isinstance(data, dict) else None
    return flavors if isinstance(flavors, dict) else {}


def load(ref: str | AssetRef, *, flavor: str | None = None, client: Client | None = None) -> Any:
    """The model of a model version ``<owner>/model/<folder>/<name>:<ref>`` (or an
    ``assethub://`` URL), ready to use: an MLflow pyfunc model, or with ``flavor`` (``sklearn``,
    ``pytorch``, ``transformers`` ...) that flavor's own object. Checked by the server (you need
    to be allowed to view the model) and cached by commit; a flavor the model was not saved
    with is a :class:`~assethub.errors.NotServableError` naming the ones it has."""
    r = _ref(ref)
    local = model_dir(r, client=client)
    if flavor is None or flavor in _PYFUNC:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(str(local))
    have = _flavors(local)
    if flavor not in have:
        raise errors.NotServableError(
            f"{r} was not saved with the MLflow flavor {flavor!r} (it has: "
            f"{', '.join(sorted(have)) or 'none'}); load it without flavor= for a pyfunc model",
            ref=str(r), reason=f"no {flavor} flavor")
    try:
        module = importlib.import_module(f"mlflow.{flavor}")
    except ImportError as exc:
        raise errors.NotServableError(f"MLflow has no flavor module mlflow.{flavor} here: {exc}",
                                      ref=str(r), reason=f"no mlflow.{flavor}") from exc
    return module.load_model(str(local))


# -- MLflow's artifact repository for assethub:// ------------------------------------------
def _repository_class() -> type:
    from mlflow.entities import FileInfo
    from mlflow.store.artifact.artifact_repo import ArtifactRepository

    from assethub.fs import PROTOCOL, AssetHubFileSystem, parse_url

    class _AssetHubArtifactRepository(ArtifactRepository):
        """Artifacts under an ``assethub://`` URI: read from a pinned commit through the server
        (your role checked), whole directories through the SDK's content cache; logging
        artifacts commits them to the branch (one commit per call)."""

        def __init__(self, artifact_uri: str, tracking_uri: str | None = None,
                     registry_uri: str | None = None) -> None:
            super().__init__(artifact_uri, tracking_uri, registry_uri)
            self._root = AssetHubFileSystem._strip_protocol(artifact_uri)
            self._fs: AssetHubFileSystem | None = None

        @property
        def fs(self) -> AssetHubFileSystem:
            if self._fs is None:
                self._fs = AssetHubFileSystem()
            return self._fs

        def _full(self, path: str | None) -> str:
            return posixpath.join(self._root, path) if path else self._root

        def list_artifacts(self, path: str | None = None) -> list[Any]:
            full = self._full(path)
            try:
                entries = self.fs.ls(full, detail=True)
            except FileNotFoundError:
                return []
            out = []
            for e in entries:
                if e["name"] == full:  # a file, not a directory
                    continue
                rel = posixpath.relpath(e["name"], self._root)
                directory = e["type"] == "directory"
                out.append(FileInfo(rel, directory, None if directory else e["size"]))
            return out

        def _download_file(self, remote_file_path: str, local_path: str) -> None:
            self.fs.get_file(self._full(remote_file_path), local_path)

        def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
            """A file, or a directory downloaded through the content cache in one call; a
            model version's root stands for its MLflow model (``model/``) when only that
            holds ``MLmodel``."""
            full = self._full(artifact_path)
            hp = parse_url(full)
            if not self.fs.isdir(full):
                return str(super().download_artifacts(artifact_path, dst_path))  # type: ignore[no-untyped-call]
            files = self.fs._objects(hp)
            if not hp.path and "MLmodel" not in files and "model/MLmodel" in files:
                artifact_path = posixpath.join(artifact_path, "model") if artifact_path else "model"
                hp = parse_url(self._full(artifact_path))
            import tempfile

            base = os.path.abspath(dst_path) if dst_path else tempfile.mkdtemp(prefix="assethub-mlflow-")
            dst = Path(self._create_download_destination(  # type: ignore[no-untyped-call]
                src_artifact_path=artifact_path, dst_local_dir_path=base)) if artifact_path else Path(base)
            at = hp.ref.path.at(self.fs.commit_of(hp.ref))
            self.fs.client.download(at, dst, prefix=f"{hp.path}/" if hp.path else "")
            return str(dst)

        def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
            target = posixpath.join(self._full(artifact_path), os.path.basename(local_file))
            self.fs.put(local_file, f"{PROTOCOL}://{target}")

        def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
            self.fs.put(local_dir.rstrip("/") + "/", f"{PROTOCOL}://{self._full(artifact_path)}/",
                        recursive=True)

        def delete_artifacts(self, artifact_path: str | None = None) -> None:
            self.fs.rm(f"{PROTOCOL}://{self._full(artifact_path)}", recursive=True)

    _AssetHubArtifactRepository.__name__ = _AssetHubArtifactRepository.__qualname__ = \
        "AssetHubArtifactRepository"
    return _AssetHubArtifactRepository


_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    """``AssetHubArtifactRepository``, defined (with MLflow imported) when first asked for:
    ``import assethub.loading`` stays light."""
    if name == "AssetHubArtifactRepository":
        if name not in _CLASSES:
            _CLASSES[name] = _repository_class()
        return _CLASSES[name]
    raise AttributeError(f"module 'assethub.loading' has no attribute {name!r}")
