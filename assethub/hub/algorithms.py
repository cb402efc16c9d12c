"""The algorithm library: named, versioned, shared training-code entries that jobs use by name.

An algorithm is ``<task type>/<name>`` (``image-classification/digits-cnn``); each update makes
a new version (1, 2, ...) holding the code (Git URL without credentials, revision, subpath),
the task type, the typed params it declares (:mod:`assethub.params`), its train / evaluate /
predict commands, the resources it needs and a description. ``name@N`` names a version; the
name alone the latest.

Who sees what, like folders: the owner and admins hold every right; a share gives a user, a
group or everyone ``view`` (see it and use it in jobs) or ``edit`` (update, share, delete);
a public algorithm and an admin's preset are visible to every signed-in user. An algorithm
one may not see answers exactly like a missing one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assethub.catalog import Algorithm, AlgorithmShare, AlgorithmVersion, Catalog
from assethub.errors import AlreadyExistsError, ForbiddenError, InvalidReferenceError, NotFoundError
from assethub.hub._rows import aware
from assethub.hub.audit import AuditLog
from assethub.hub.git_credentials import GitCredentials
from assethub.hub.identity import (
    Principal,
    find_group,
    find_user,
    refuse_job_token,
    require_admin,
    require_user,
)
from assethub.hub.permissions import not_found
from assethub.params import declare, to_spec
from assethub.wire import TASK_TYPES, AlgorithmShareView, AlgorithmVersionView, AlgorithmView

__all__ = ["ALGORITHM_ROLES", "Algorithms", "check_resources", "split_version"]

ALGORITHM_ROLES = ("view", "edit")
_RANK = {"none": 0, "view": 1, "edit": 2, "owner": 3}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}/[a-z0-9][a-z0-9._-]{0,126}")
# what a version holds besides its number: the fields `update` may change
VERSION_FIELDS = ("code_url", "code_revision", "code_subpath", "task_type", "params", "train_command",
                  "evaluate_command", "predict_command", "resources", "description")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidReferenceError(
            f"invalid algorithm name {str(name)[:200]!r}: use <task type>/<name> in lower case "
            "letters, digits, '-', '_' (and '.' in the name), e.g. image-classification/digits-cnn",
            part="algorithm", value=str(name)[:200])
    return name


def split_version(spec: str) -> tuple[str, int | None]:
    """``name@N`` -> (name, N); ``name`` -> (name, None: the latest)."""
    name, sep, version = spec.partition("@")
    if not sep:
        return check_name(name), None
    if not version.isdigit() or not 0 < int(version) < 2**31:
        raise InvalidReferenceError(f"invalid algorithm version {version[:20]!r} in {spec[:200]!r}: "
                                    "use <name>@<N> with N = 1, 2, ...", part="algorithm",
                                    value=spec[:200])
    return check_name(name), int(version)


def check_resources(value: Any, where: str = "resources") -> dict[str, int]:
    """``{cpu: N, gpu: N}`` with whole numbers 0..1024; {} for none."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidReferenceError(f"{where} must be a mapping like {{cpu: 2, gpu: 1}}",
                                    part="resources", value=str(value)[:100])
    out = {}
    for k, v in value.items():
        if k not in ("cpu", "gpu"):
            raise InvalidReferenceError(f"unknown resource {k!r} in {where}: use cpu and gpu",
                                        part="resources", value=str(k)[:100])
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1024:
            raise InvalidReferenceError(f"{where}.{k} must be a whole number 0..1024, not {v!r}",
                                        part="resources", value=str(v)[:100])
        out[str(k)] = v
    return out


def _version_view(v: AlgorithmVersion) -> AlgorithmVersionView:
    return AlgorithmVersionView(v.version, v.code_url, v.code_revision, v.code_subpath, v.task_type,
                                dict(v.params or {}), v.train_command, v.evaluate_command,
                                v.predict_command, dict(v.resources or {}), v.description,
                                v.created_by, aware(v.created_at) or v.created_at)


def _subject(sh: AlgorithmShare) -> str:
    subject = sh.user if sh.subject_type == "user" else sh.group
    return subject.name if subject is not None else ""


def _rank(who: Principal, a: Algorithm) -> int:
    if who.anonymous:
        return 0
    if who.is_admin or who.name == a.owner:
        return _RANK["owner"]
    best = _RANK["view"] if a.public or a.preset else 0
    for sh in a.shares:
        if (sh.subject_type == "everyone"
                or (sh.subject_type == "user" and sh.user is not None and sh.user.name == who.name)
                or (sh.subject_type == "group" and sh.group is not None and sh.group.name in who.groups)):
            best = max(best, _RANK[sh.role])
    return best


class Algorithms:
    """The algorithm library, checked against the caller's rights on each algorithm."""

    def __init__(self, catalog: Catalog, audit: AuditLog, git_credentials: GitCredentials) -> None:
        self.catalog = catalog
        self.audit = audit
        self.git_credentials = git_credentials

    # -- reading -----------------------------------------------------------------------------
    def _find(self, s: Session, who: Principal, name: str, needed: str = "view") -> Algorithm:
        a = s.scalar(select(Algorithm).where(Algorithm.name == name))
        have = _rank(who, a) if a is not None else 0
        if a is None or have == 0:
            raise not_found(who, NotFoundError("algorithm", name))
        if have < _RANK[needed]:
            raise ForbiddenError(f"your role on algorithm {name} is "
                                 f"'{next(k for k, v in _RANK.items() if v == have)}'; this needs "
                                 f"'{needed}'", needed=needed)
        return a

    def _view(self, who: Principal, a: Algorithm, version: int | None = None, *,
              full: bool = False) -> AlgorithmView:
        versions = {v.version: v for v in a.versions}
        latest = max(versions)
        if version is not None and version not in versions:
            raise NotFoundError("algorithm version", f"{a.name}@{version}",
                                f"its versions are 1..{latest}")
        role = next(k for k, v in _RANK.items() if v == _rank(who, a))
        shares = tuple(sorted((AlgorithmShareView(a.name, sh.subject_type, _subject(sh), sh.role,
                                                  sh.created_by) for sh in a.shares),
                              key=lambda x: (x.subject_type, x.subject_name))) if full else ()
        return AlgorithmView(a.name, a.owner, bool(a.public), bool(a.preset),
                             aware(a.created_at) or a.created_at, aware(a.updated_at) or a.updated_at,
                             latest, _version_view(versions[version or latest]), role,
                             tuple(_version_view(versions[n]) for n in sorted(versions)) if full else (),
                             shares)

    def get_algorithm(self, who: Principal, name: str) -> AlgorithmView:
        """The algorithm ``name`` (or ``name@N``: that version as ``current``), all its versions."""
        require_user(who)
        base, version = split_version(name)
        with self.catalog.session() as s:
            return self._view(who, self._find(s, who, base), version, full=True)

    def list_algorithms(self, who: Principal, *, task_type: str | None = None,
                        query: str | None = None) -> list[AlgorithmView]:
        """The algorithms the caller may see, by name; ``query`` matches name and description."""
        require_user(who)
        with self.catalog.session() as s:
            found = []
            for a in s.scalars(select(Algorithm).order_by(Algorithm.name)):
                if _rank(who, a) == 0:
                    continue
                view = self._view(who, a)
                if task_type and view.current.task_type != task_type:
                    continue
                if query and query.lower() not in f"{a.name} {view.current.description}".lower():
                    continue
                found.append(view)
            return found

    def resolve_algorithm(self, who: Principal, spec: str) -> AlgorithmView:
        """What a job uses: ``spec`` (``name`` or ``name@N``) as the caller may see it."""
        return self.get_algorithm(who, spec)

    # -- writing -----------------------------------------------------------------------------
    def _version_row(self, who: Principal, fields: Mapping[str, Any], number: int) -> AlgorithmVersion:
        """A new version's row from ``fields``, each checked."""
        code_url = str(fields.get("code_url") or "").strip()
        if not code_url:
            raise InvalidReferenceError("an algorithm needs its code: a Git URL or path (code_url)",
                                        part="code_url", value="")
        code_url = self.git_credentials.adopt_url(who, code_url)  # a credential goes to the caller
        task_type = str(fields.get("task_type") or "")
        if task_type not in TASK_TYPES:
            raise InvalidReferenceError(f"unknown task type {task_type!r}; use one of "
                                        f"{', '.join(TASK_TYPES)}", part="task_type", value=task_type)
        subpath = str(fields.get("code_subpath") or "").strip("/")
        if ".." in subpath.split("/"):
            raise InvalidReferenceError(f"subpath {subpath!r} must stay inside the repository",
                                        part="code_subpath", value=subpath[:200])
        params = fields.get("params") or {}
        if not isinstance(params, Mapping):
            raise InvalidReferenceError("params must be a mapping of name: declaration",
                                        part="params", value=str(params)[:100])
        declared = to_spec(declare(params, "the algorithm's params"))  # typed, checked
        text = {k: str(fields.get(k) or "") for k in ("code_revision", "train_command", "evaluate_command",
                                                      "predict_command", "description")}
        for k in ("code_revision",):
            if len(text[k]) > 256:
                raise InvalidReferenceError(f"{k} is too long", part=k, value=text[k][:100])
        return AlgorithmVersion(version=number, code_url=code_url,
                                code_revision=text["code_revision"].strip(),
                                code_subpath=subpath, task_type=task_type, params=declared,
                                train_command=text["train_command"].strip(),
                                evaluate_command=text["evaluate_command"].strip(),
                                predict_command=text["predict_command"].strip(),
                                resources=check_resources(fields.get("resources")),
                                description=text["description"], created_by=who.name or "")

    def register_algorithm(self, /, who: Principal, name: str, *, public: bool = False, preset: bool = False,
                           **fields: Any) -> AlgorithmView:
        """Register a new algorithm (version 1); ``preset`` is for admins."""
        with self.audit.audited(who, "algorithm.register", str(name)[:200]):
            me = require_user(who)
            refuse_job_token(who, "registering an algorithm")
            check_name(name)
            if preset:
                require_admin(who)
            unknown = set(fields) - set(VERSION_FIELDS)
            if unknown:
                raise InvalidReferenceError(f"unknown algorithm field(s) {', '.join(sorted(unknown))}",
                                            part="algorithm field", value=sorted(unknown)[0])
            with self.catalog.session() as s:
                if s.scalar(select(Algorithm.id).where(Algorithm.name == name)) is not None:
                    raise AlreadyExistsError("algorithm", name, "update it to make a new version")
                a = Algorithm(name=name, owner=me, public=public, preset=preset)
                a.versions.append(self._version_row(who, fields, 1))
                s.add(a)
                s.flush()
                return self._view(who, a, full=True)

    def update_algorithm(self, /, who: Principal, name: str, *, public: bool | None = None,
                         preset: bool | None = None, **changes: Any) -> AlgorithmView:
        """A new version made of the latest with ``changes`` (``edit``); ``public`` changes the
        algorithm itself (no new version when it is the only change)."""
        with self.audit.audited(who, "algorithm.update", str(name)[:200]):
            require_user(who)
            refuse_job_token(who, "updating an algorithm")
            check_name(name)
            unknown = set(changes) - set(VERSION_FIELDS)
            if unknown:
                raise InvalidReferenceError(f"unknown algorithm field(s) {', '.join(sorted(unknown))}",
                                            part="algorithm field", value=sorted(unknown)[0])
            with self.catalog.session() as s:
                a = self._find(s, who, name, "edit")
                if (a.preset or preset) and not who.is_admin:
                    raise ForbiddenError(f"{name} is a preset: only an admin may change it", needed="admin")
                if public is not None:
                    a.public = public
                if preset is not None:
                    a.preset = preset
                changes = {k: v for k, v in changes.items() if v is not None}
                if changes:
                    latest = a.versions[-1]
                    current = {k: getattr(latest, k) for k in VERSION_FIELDS}
                    a.versions.append(self._version_row(who, {**current, **changes}, latest.version + 1))
                s.flush()
                return self._view(who, a, full=True)

    def delete_algorithm(self, who: Principal, name: str) -> None:
        """Delete an algorithm and all its versions (``edit``; a preset: admins only). Runs that
        used it keep its name and version."""
        with self.audit.audited(who, "algorithm.delete", str(name)[:200]):
            require_user(who)
            refuse_job_token(who, "deleting an algorithm")
            with self.catalog.session() as s:
                a = self._find(s, who, check_name(name), "edit")
                if a.preset and not who.is_admin:
                    raise ForbiddenError(f"{name} is a preset: only an admin may delete it", needed="admin")
                s.delete(a)

    def share_algorithm(self, who: Principal, name: str, *, subject_type: str, subject_name: str = "",
                        role: str) -> AlgorithmShareView:
        """Share with a user, a group or everyone as ``view`` or ``edit`` (needs ``edit``)."""
        target = f"{str(name)[:200]} {subject_type}:{subject_name}={role}"
        with self.audit.audited(who, "algorithm.share", target):
            require_user(who)
            refuse_job_token(who, "sharing an algorithm")
            if subject_type not in ("user", "group", "everyone"):
                raise InvalidReferenceError(f"share with a 'user', a 'group' or 'everyone', not "
                                            f"{subject_type!r}", part="subject_type", value=subject_type)
            if role not in ALGORITHM_ROLES:
                raise InvalidReferenceError(f"an algorithm's role is one of {', '.join(ALGORITHM_ROLES)}",
                                            part="role", value=role)
            if subject_type == "everyone":
                subject_name = ""
            with self.catalog.session() as s:
                a = self._find(s, who, check_name(name), "edit")
                if a.preset and not who.is_admin:
                    raise ForbiddenError(f"{name} is a preset: only an admin may share it", needed="admin")
                user_id = find_user(s, subject_name).id if subject_type == "user" else None
                group_id = find_group(s, subject_name).id if subject_type == "group" else None
                sh = next((x for x in a.shares if x.subject_type == subject_type and x.user_id == user_id
                           and x.group_id == group_id), None)
                if sh is None:
                    sh = AlgorithmShare(subject_type=subject_type, subject_name=subject_name,
                                        user_id=user_id, group_id=group_id, role=role,
                                        created_by=who.name or "")
                    a.shares.append(sh)
                sh.role = role
                return AlgorithmShareView(a.name, subject_type, subject_name, role, sh.created_by)

    def unshare_algorithm(self, who: Principal, name: str, *, subject_type: str,
                          subject_name: str = "") -> None:
        with self.audit.audited(who, "algorithm.unshare", f"{str(name)[:200]} {subject_type}:{subject_name}"):
            require_user(who)
            refuse_job_token(who, "sharing an algorithm")
            with self.catalog.session() as s:
                a = self._find(s, who, check_name(name), "edit")
                before = len(a.shares)
                a.shares = [sh for sh in a.shares if not (
                    sh.subject_type == subject_type
                    and _subject(sh) == ("" if subject_type == "everyone" else subject_name))]
                if len(a.shares) == before:
                    raise NotFoundError("share", f"{subject_type}:{subject_name} on {name}")

    # -- presets -----------------------------------------------------------------------------
    def ensure_preset(self, who: Principal, name: str, **fields: Any) -> str:
        """Register ``name`` as an admin preset, or add a version when its code or declarations
        changed; "registered", "updated" or "present". Idempotent."""
        require_admin(who)
        with self.catalog.session() as s:
            a = s.scalar(select(Algorithm).where(Algorithm.name == check_name(name)))
            if a is not None:
                latest = a.versions[-1]
                wanted = self._version_row(who, fields, latest.version + 1)
                same = all(getattr(latest, k) == getattr(wanted, k) for k in VERSION_FIELDS)
                if same and a.preset:
                    return "present"
        if a is None:
            self.register_algorithm(who, name, preset=True, **fields)
            return "registered"
        self.update_algorithm(who, name, preset=True, **fields)
        return "updated"
