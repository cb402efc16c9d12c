"""Models' job settings: what ``assethub train MODEL`` runs when nothing else is said.

They live IN the model's repository, on ``main``, as ``.assethub/job.yaml``: a change is a
commit, the history shows it, and they are versioned with the model. Fields: ``repo``,
``revision``, ``subpath``, ``train_command``, ``evaluate_command``, ``dataset`` (the default
dataset reference), ``params`` (default values), ``resources`` (``{cpu: N, gpu: N}``), or
``algorithm`` (``name`` / ``name@N`` of the library) instead of the code fields.

A settings commit is not a model version: it names the model commit main held before
(``assethub.model_commit``), as evaluation and merge commits do, so lineage looks through it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from assethub.errors import InvalidReferenceError, ObjectNotFoundError
from assethub.hub.algorithms import Algorithms, check_resources, split_version
from assethub.hub.audit import AuditLog
from assethub.hub.git_credentials import GitCredentials
from assethub.hub.identity import Principal, refuse_job_token, require_user
from assethub.hub.permissions import Permissions
from assethub.lineage import MODEL_COMMIT, model_commit_of
from assethub.refs import DEFAULT_BRANCH, AssetKind, AssetPath, AssetRef
from assethub.storage import Storage
from assethub.wire import JOB_SETTINGS_FIELDS, AddFile, DeleteFile, JobSettingsView

__all__ = ["SETTINGS_FILE", "JobSettings", "check_settings"]

#: where a model keeps its job settings, on main
SETTINGS_FILE = ".assethub/job.yaml"
#: commit metadata marking a settings change (the commit is no model version)
SETTINGS_MARK = "assethub.settings"
_TEXT = ("repo", "revision", "subpath", "train_command", "evaluate_command", "dataset", "algorithm")
_CODE = ("repo", "revision", "subpath")


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` checked field by field (a clear error naming the field), empty ones dropped."""
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in JOB_SETTINGS_FIELDS:
            raise InvalidReferenceError(f"unknown job setting {name!r}; the settings are "
                                        f"{', '.join(JOB_SETTINGS_FIELDS)}", part="setting",
                                        value=str(name)[:100])
        if value is None or value == "" or value == {}:
            continue
        if name in _TEXT:
            if not isinstance(value, str) or len(value) > 2048 or "\n" in value:
                raise InvalidReferenceError(f"setting {name!r} must be one line of text (at most 2048 "
                                            "characters)", part=name, value=str(value)[:100])
            value = value.strip()
        if name == "subpath" and ".." in value.strip("/").split("/"):
            raise InvalidReferenceError(f"subpath {value!r} must stay inside the repository",
                                        part="subpath", value=value[:200])
        if name == "dataset":
            ref = AssetRef.coerce(value)
            if not ref.path.is_dataset:
                raise InvalidReferenceError(f"setting 'dataset': {ref.path} is not a dataset",
                                            part="dataset", value=value[:200])
            value = str(ref)
        if name == "algorithm":
            split_version(value)
        if name == "params":
            if not isinstance(value, Mapping) or not all(
                    isinstance(k, str) and k and (v is None or isinstance(v, str | int | float | bool))
                    for k, v in value.items()):
                raise InvalidReferenceError("setting 'params' must map names to plain values "
                                            "(text, numbers, true/false)", part="params",
                                            value=str(value)[:100])
            value = dict(value)
        if name == "resources":
            value = check_resources(value, "setting 'resources'")
        out[name] = value
    if out.get("algorithm") and any(out.get(k) for k in _CODE):
        raise InvalidReferenceError("a model's settings name either an algorithm or a repository "
                                    "(repo / revision / subpath), not both", part="algorithm",
                                    value=str(out["algorithm"]))
    return out


class JobSettings:
    """Reads and writes models' ``.assethub/job.yaml`` on main, checked against the caller."""

    def __init__(self, storage: Storage, audit: AuditLog, permissions: Permissions,
                 git_credentials: GitCredentials, algorithms: Algorithms) -> None:
        self.storage = storage
        self.audit = audit
        self.permissions = permissions
        self.git_credentials = git_credentials
        self.algorithms = algorithms

    def read(self, model: AssetPath) -> tuple[str, dict[str, Any]]:
        """The settings on the model's main and that commit (("", {}) without a settings file).
        No permission check: for callers that checked already."""
        at = model.at(DEFAULT_BRANCH)
        commit = self.storage.resolve(at)
        try:
            raw = self.storage.read_bytes(model.at(commit), SETTINGS_FILE)
        except ObjectNotFoundError:
            return "", {}
        try:
            data = yaml.safe_load(raw.decode()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise InvalidReferenceError(f"{SETTINGS_FILE} on {at} is not valid YAML ({e}); fix it with "
                                        "`assethub configure`", part="settings", value=str(at)) from None
        if not isinstance(data, dict):
            raise InvalidReferenceError(f"{SETTINGS_FILE} on {at} must be a mapping; fix it with "
                                        "`assethub configure`", part="settings", value=str(at))
        return commit, check_settings(data)

    def job_settings(self, who: Principal, model: AssetPath | str) -> JobSettingsView:
        """The model's job settings (``view``)."""
        path = AssetPath.coerce(model)
        self.permissions.ref(who, path.at(DEFAULT_BRANCH), "view")
        commit, settings = self.read(path)
        return JobSettingsView(str(path), commit, settings)

    def configure(self, /, who: Principal, model: AssetPath | str, *, unset: Iterable[str] = (),
                  **changes: Any) -> JobSettingsView:
        """Change the model's job settings (``edit``) in one commit on main: ``changes`` set
        fields (params merge into the saved ones), ``unset`` removes fields. A credential in
        ``repo`` goes to the caller's git credentials; only the clean URL is stored."""
        path = AssetPath.coerce(model)
        with self.audit.audited(who, "model.configure", str(path)):
            require_user(who)
            refuse_job_token(who, "changing a model's job settings")
            if path.kind is not AssetKind.MODEL:
                raise InvalidReferenceError(f"{path} is not a model: job settings belong to models",
                                            part="model", value=str(path))
            self.permissions.ref(who, path.at(DEFAULT_BRANCH), "edit")
            unset = list(unset)
            for name in unset:
                if name not in JOB_SETTINGS_FIELDS:
                    raise InvalidReferenceError(f"unknown job setting {name!r}; the settings are "
                                                f"{', '.join(JOB_SETTINGS_FIELDS)}", part="unset",
                                                value=name[:100])
            changes = {k: v for k, v in changes.items() if v is not None}
            if changes.get("repo"):
                changes["repo"] = self.git_credentials.adopt_url(who, str(changes["repo"]))
            new = check_settings(changes)
            if new.get("algorithm"):  # it must be one the caller may use
                self.algorithms.resolve_algorithm(who, new["algorithm"])
            commit, old = self.read(path)
            merged = dict(old)
            if "params" in new:
                new["params"] = {**old.get("params", {}), **new["params"]}
            if new.get("algorithm"):
                for k in _CODE:
                    merged.pop(k, None)
            if any(new.get(k) for k in _CODE):
                merged.pop("algorithm", None)
            merged.update(new)
            for name in unset:
                merged.pop(name, None)
            merged = check_settings(merged)
            if merged == old:
                return JobSettingsView(str(path), commit, old)
            history = [(c.id, c.metadata) for c in self.storage.log(path.at(DEFAULT_BRANCH), limit=50)]
            model_commit = model_commit_of(history) or (history[0][0] if history else "")
            what = ", ".join(sorted(set(new) | set(unset))) or "settings"
            metadata = {SETTINGS_MARK: SETTINGS_FILE}
            if model_commit:
                metadata[MODEL_COMMIT] = model_commit
            with tempfile.TemporaryDirectory() as d:
                if merged:
                    local = Path(d) / "job.yaml"
                    local.write_text(yaml.safe_dump(merged, sort_keys=True))
                    ops: list[AddFile | DeleteFile] = [AddFile(local, SETTINGS_FILE)]
                else:
                    ops = [DeleteFile(SETTINGS_FILE)]
                info = self.storage.commit(path.at(DEFAULT_BRANCH), ops, message=f"Job settings: {what}",
                                           metadata=metadata,
                                           parent_commit=history[0][0] if history else None)
            return JobSettingsView(str(path), info.id, merged)
