"""Follows: a model that retrains when a dataset's ``main`` moves, or on a schedule.

A follow is a catalog row (``Follow``). Creating one needs ``run`` on the dataset and ``edit``
on the model, and installs its triggers: a lakeFS action on the dataset's repository that
calls the server's hook, and whatever the hub's :class:`~assethub.triggers.FollowTriggers`
install to run the retrains when the hook reports an update, and on the follow's schedule
(with Prefect: an automation and a schedule on the ``retrain`` deployment, see
``deployments.triggers``; wired by the server's composition root).

Consent: the action is one file per dataset, committed into its ``main``. Only a caller with
``edit`` on the dataset (its owner, or someone the owner let write) makes that commit; once it
is there, anyone with ``run`` follows the dataset through the catalog alone. A ``run``-only
caller is refused (403) while the dataset has no current action.

Re-checked at every trigger: before the hook passes a dataset update on, each follow's owner
must still exist, be enabled and hold what a retrain needs (``edit`` on the model, ``run`` on
the dataset). A follow whose owner does not is paused with the reason (its triggers removed, so
nothing of it starts); the list shows why, and its owner resumes it once the rights are back
(:func:`resume_follow`), or anyone with ``edit`` on the model deletes it.

Secrets: the action file holds no secret. lakeFS puts the hook's secret into the request from
its own environment (``{{ ENV.<HOOK_SECRET_ENV> }}`` in a header); the server knows it from its
settings. The hook URL is a server setting too (:class:`~assethub.triggers.LakeFSHook`), never
a request's Host header. Nobody reads or writes ``_lakefs_actions/`` through the hub
(``assethub.storage``'s reserved prefix).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assethub.catalog import Asset, Folder, Follow
from assethub.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ForbiddenError,
    InvalidReferenceError,
    NotFoundError,
)
from assethub.hub import Hub, Principal
from assethub.refs import AssetKind, AssetPath
from assethub.storage import ACTIONS_PREFIX
from assethub.triggers import HOOK_HEADER, HOOK_SECRET_ENV, FollowTriggers, LakeFSHook, TriggersUnavailable
from assethub.wire import FollowView  # FollowView is defined there, re-exported here

log = logging.getLogger("assethub.follows")

ACTION_NAME = "assethub.yaml"
ACTIONS_FILE = ACTIONS_PREFIX + ACTION_NAME
HOOK_PATH = "/api/v1/hooks/lakefs"  # the server's route (assethub.server.routes.follows)
INTERNAL = "assethub.internal"  # commit metadata of commits the hub makes for itself
_SETTINGS = {"repo": str, "revision": str, "subpath": str, "command": str, "metric": str,
             "higher_is_better": bool, "margin": float, "params": dict, "schedule": str}
DEFAULTS: dict[str, Any] = {"revision": "", "subpath": "", "command": "", "metric": "accuracy",
                            "higher_is_better": True, "margin": 0.0, "params": {}, "schedule": ""}




def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The follow's settings with defaults filled in; a clear error for a bad one."""
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise InvalidReferenceError(f"unknown follow setting(s): {', '.join(unknown)}; known: "
                                    f"{', '.join(_SETTINGS)}", part="settings", value=unknown[0])
    out = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    for key, kind in _SETTINGS.items():
        value = out.get(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            out[key] = value = float(value)
        if value is not None and not isinstance(value, kind):
            raise InvalidReferenceError(f"follow setting {key!r} must be a {kind.__name__}",
                                        part=key, value=str(value))
    if not str(out.get("repo") or "").strip():
        raise InvalidReferenceError("a follow needs the training code: --repo URL", part="repo", value="")
    if out["margin"] < 0:
        raise InvalidReferenceError("margin must be 0 or more", part="margin", value=str(out["margin"]))
    if out["schedule"]:
        fields = out["schedule"].split()
        if len(fields) != 5:
            raise InvalidReferenceError(f"schedule {out['schedule']!r} is not a cron expression of five "
                                        "fields, e.g. '0 3 * * *'", part="schedule", value=out["schedule"])
    return out


def _path(asset: Asset) -> str:
    f = asset.folder
    return f"{f.owner}/{f.kind}/{f.name}/{asset.name}"


def _view(f: Follow, triggers: dict[str, str] | None = None) -> FollowView:
    """The follow with its model's and dataset's current paths (it refers to them by id)."""
    return FollowView(f.id, _path(f.model), _path(f.dataset), dict(f.settings), f.created_by,
                      f.created_at, triggers or {}, f.paused or "")


def _asset_id(s: Session, path: AssetPath) -> int | None:
    return s.scalar(select(Asset.id).join(Folder).where(
        Folder.owner == path.owner, Folder.kind == path.kind.value, Folder.name == path.folder,
        Asset.name == path.name))


#: what a follow's owner must hold for its retrain (the retrain job's needs, jobs._JOB_NEEDS)
RETRAIN_NEEDS = (("model", "edit"), ("dataset", "run"))


def why_owner_cannot_retrain(hub: Hub, follow: FollowView) -> str:
    """Why the follow's owner may no longer have retrains run for them ("" when they may): they
    were deleted or disabled, or lost ``edit`` on the model or ``run`` on the dataset."""
    owner = follow.created_by
    try:
        principal = hub.principal_of(owner)
    except NotFoundError:
        return f"its owner {owner} no longer exists"
    except AuthenticationError:
        return f"its owner {owner} is disabled"
    for which, needed in RETRAIN_NEEDS:
        path = follow.model if which == "model" else follow.dataset
        try:
            hub.check(principal, path, needed)
        except (NotFoundError, PermissionError):
            return f"its owner {owner} no longer has '{needed}' on the {which} {path}"
    return ""


def _pause(hub: Hub, follow: FollowView, reason: str) -> bool:
    """Record why ``follow`` stopped and remove its triggers; whether they are gone (or there
    were none to remove), so no retrain of it can start."""
    system = Principal("assethub-server", is_admin=True)
    with hub.catalog.session() as s:
        row = s.get(Follow, follow.id)
        if row is None:
            return True
        row.paused = reason[:2000]
    hub.record(system, "follow.pause", f"{follow.model} <- {follow.dataset} ({follow.id})", "ok", reason)
    log.warning("follow %s paused: %s", follow.id, reason)
    try:
        hub.follow_triggers.remove(follow.id)
    except TriggersUnavailable:
        return True  # nothing installed there either
    except Exception as e:
        log.warning("could not remove the triggers of paused follow %s: %s", follow.id, e)
        return False
    return True


def _paths(model: str, dataset: str) -> tuple[AssetPath, AssetPath]:
    m, d = AssetPath.coerce(model), AssetPath.coerce(dataset)
    if m.kind is not AssetKind.MODEL:
        raise InvalidReferenceError(f"{m} is not a model", part="model", value=str(m))
    if d.kind is not AssetKind.DATASET:
        raise InvalidReferenceError(f"{d} is not a dataset", part="dataset", value=str(d))
    return m, d


def create_follow(hub: Hub, who: Principal, model: str, dataset: str,
                  settings: dict[str, Any]) -> FollowView:
    """Store the follow and install its triggers (lakeFS action, automation, schedule)."""
    m, d = _paths(model, dataset)
    with hub.audited(who, "follow.create", f"{m} <- {d}"):
        me = hub.require_user(who)
        hub.check(who, d, "run")
        hub.check(who, m, "edit")
        clean = check_settings(settings)
        clean["repo"] = hub.adopt_git_url(who, clean["repo"])  # a credential in it is kept apart
        action = _action_to_install(hub, who, d)
        with hub.catalog.session() as s:
            model_id, dataset_id = _asset_id(s, m), _asset_id(s, d)
            if model_id is None or dataset_id is None:  # deleted since the check
                raise NotFoundError("asset", str(m if model_id is None else d))
            if s.scalar(select(Follow).where(Follow.model_id == model_id, Follow.dataset_id == dataset_id)):
                raise AlreadyExistsError("follow", f"{m} <- {d}", "remove it first (assethub unfollow)")
            row = Follow(model_id=model_id, dataset_id=dataset_id, model_path=str(m),
                         dataset_path=str(d), settings=clean, created_by=me)
            s.add(row)
            s.flush()
            view = _view(row)
        triggers = {"lakefs_action": install_action(hub, d) if action else "present"}
        if not hub.lakefs_hook.secret:
            triggers["lakefs_action"] = (
                "not installed: the server has no hook secret (ASSETHUB_HOOK_SECRET, which lakeFS "
                f"must hold as {HOOK_SECRET_ENV}; `assethub up` sets both)")
        # the retrains act for the follow's owner (their git credentials, their code mirror)
        triggers.update(_triggers(hub, lambda t: t.install(view.id, str(m), str(d), {**clean, "owner": me})))
        return FollowView(view.id, view.model, view.dataset, view.settings, view.created_by,
                          view.created_at, triggers)


def list_follows(hub: Hub, who: Principal, *, model: str | None = None,
                 dataset: str | None = None) -> list[FollowView]:
    """The follows whose model the caller may see."""
    with hub.catalog.session() as s:
        q = select(Follow).order_by(Follow.id)
        if model:
            q = q.where(Follow.model_id == _asset_id(s, AssetPath.coerce(model)))
        if dataset:
            q = q.where(Follow.dataset_id == _asset_id(s, AssetPath.coerce(dataset)))
        rows = [_view(f) for f in s.scalars(q)]
    out = []
    for f in rows:
        try:
            hub.check(who, f.model, "view")
        except (NotFoundError, AuthenticationError, PermissionError):
            continue
        out.append(f)
    return out


def start_follow_run(hub: Hub, who: Principal, follow_id: int, *,
                     trigger: str = "event") -> tuple[Any, str]:
    """A follow's retrain, registered for the service user that runs it (an automation or a
    schedule fired): refused while the follow is paused, and a follow whose owner lost a right
    since the last trigger is paused now, with the reason, instead of run."""
    if who.name != hub.jobs.service_user:  # as the hub says it; nobody else may pause through here
        return hub.open_follow_run(who, follow_id, trigger=trigger)
    with hub.catalog.session() as s:
        row = s.get(Follow, follow_id) if 0 < follow_id < 2**31 else None
        follow = _view(row) if row is not None else None
    if follow is not None and not follow.paused:
        why = why_owner_cannot_retrain(hub, follow)
        if why:
            _pause(hub, follow, why)
            follow = replace(follow, paused=why)
    if follow is not None and follow.paused:
        raise ForbiddenError(f"follow {follow_id} ({follow.model} <- {follow.dataset}) is paused: "
                             f"{follow.paused}; its owner resumes it with `assethub resume-follow "
                             f"{follow_id}` once the rights are back", needed="active follow")
    return hub.open_follow_run(who, follow_id, trigger=trigger)


def resume_follow(hub: Hub, who: Principal, follow_id: int) -> FollowView:
    """Let a paused follow trigger retrains again (its triggers reinstalled): only its owner,
    and only while they hold what a retrain needs. An active follow is returned as it is."""
    with hub.catalog.session() as s:
        row = s.get(Follow, follow_id)
        if row is None:
            raise NotFoundError("follow", str(follow_id))
        view = _view(row)
    with hub.audited(who, "follow.resume", f"{view.model} <- {view.dataset} ({follow_id})"):
        me = hub.require_user(who)
        hub.check(who, view.model, "view")
        if me != view.created_by:
            raise ForbiddenError(f"only the follow's owner, {view.created_by}, may resume follow "
                                 f"{follow_id} (its retrains act for them); or delete it and follow "
                                 "the dataset yourself", needed="owner")
        if not view.paused:
            return view
        why = why_owner_cannot_retrain(hub, view)
        if why:
            raise ForbiddenError(f"follow {follow_id} stays paused: {why}", needed="edit")
        with hub.catalog.session() as s:
            row = s.get(Follow, follow_id)
            if row is None:
                raise NotFoundError("follow", str(follow_id))
            row.paused = ""
            view = _view(row)
        triggers = _triggers(hub, lambda t: t.install(
            view.id, view.model, view.dataset, {**view.settings, "owner": view.created_by}))
        return FollowView(view.id, view.model, view.dataset, view.settings, view.created_by,
                          view.created_at, triggers, "")


def delete_follow(hub: Hub, who: Principal, follow_id: int) -> None:
    with hub.catalog.session() as s:
        row = s.get(Follow, follow_id)
        if row is None:
            raise NotFoundError("follow", str(follow_id))
        model = _path(row.model)
    with hub.audited(who, "follow.delete", f"{model} ({follow_id})"):
        hub.check(who, model, "edit")
        with hub.catalog.session() as s:
            row = s.get(Follow, follow_id)
            if row is not None:
                s.delete(row)
        _triggers(hub, lambda t: t.remove(follow_id))


def _triggers(hub: Hub, call: Callable[[FollowTriggers], dict[str, str]]) -> dict[str, str]:
    """What ``call`` on the hub's follow triggers did; a failure is reported, not raised."""
    triggers = hub.follow_triggers
    try:
        return dict(call(triggers) or {})
    except TriggersUnavailable as e:
        return {triggers.name: f"not installed: {e}"}
    except Exception as e:  # the follow stays; its triggers can be installed again
        log.warning("%s triggers failed: %s", triggers.name, e)
        return {triggers.name: f"failed: {type(e).__name__}: {e}"}


# -- lakeFS actions --------------------------------------------------------------------------
def _action_to_install(hub: Hub, who: Principal, dataset: AssetPath) -> bool:
    """Whether creating this follow must (re)write the dataset's action; refused (403) when it
    must and the caller may not write the dataset: its owner's side has to agree first."""
    if not hub.lakefs_hook.secret:
        return False  # nothing to install; the follow says so
    if hub.storage.read_action(dataset.at("main"), ACTION_NAME) == action_yaml(hub.lakefs_hook):
        return False  # someone with edit agreed already: follow through the catalog
    try:
        hub.check(who, dataset, "edit")
    except ForbiddenError:
        raise ForbiddenError(
            f"following {dataset} installs a lakeFS action in its main branch, which needs the "
            f"consent of someone with 'edit' on it: ask {dataset.owner} (its owner) or an editor "
            "to follow it first (once); then 'run' is enough to follow it", needed="edit") from None
    return True


def hook_url(hook: LakeFSHook) -> str:
    """The URL the action calls: the server's configured base URL and the hook's path."""
    return f"{hook.base_url.rstrip('/')}{HOOK_PATH}"


def action_yaml(hook: LakeFSHook) -> str:
    """The action file: no secret in it, only the name of lakeFS's variable that holds it."""
    return f"""name: assethub
description: Tell Asset Hub that main moved (followed datasets retrain their models).
on:
  post-commit:
    branches: [main]
  post-merge:
    branches: [main]
hooks:
  - id: assethub_dataset_updated
    type: webhook
    description: POST to the Asset Hub server
    properties:
      url: "{hook_url(hook)}"
      timeout: 10s
      headers:
        {HOOK_HEADER}: "{{{{ ENV.{HOOK_SECRET_ENV} }}}}"
"""


def install_action(hub: Hub, dataset: AssetPath) -> str:
    """Commit the lakeFS action (unless the same one is there already); what was done. The
    caller has checked consent (:func:`_action_to_install`)."""
    return hub.storage.install_action(
        dataset.at("main"), ACTION_NAME, action_yaml(hub.lakefs_hook),
        message="Asset Hub: notify the hub when main moves (followed dataset)",
        metadata={INTERNAL: "lakefs-action"})


def dataset_of_repository(hub: Hub, repository: str) -> AssetPath | None:
    with hub.catalog.session() as s:
        asset = s.scalar(select(Asset).where(Asset.repository == repository))
        return AssetPath.parse(_path(asset)) if asset is not None else None


def on_lakefs_event(hub: Hub, secret: str, event: dict[str, Any]) -> dict[str, Any]:
    """The hook: a lakeFS post-commit / post-merge on a dataset's main. Tells the hub's follow
    triggers that the dataset was updated (they run the retrains); returns what it did."""
    expected = hub.lakefs_hook.secret
    if not expected or not secret or not secrets.compare_digest(secret.encode(), expected.encode()):
        raise AuthenticationError(f"the hook needs the secret lakeFS holds ({HOOK_HEADER} header)")
    repository = str(event.get("repository_id") or "")
    branch = str(event.get("branch_id") or "")
    metadata = event.get("commit_metadata") or {}
    if branch != "main":
        return {"ignored": f"branch {branch!r} is not main"}
    if isinstance(metadata, dict) and metadata.get(INTERNAL):
        return {"ignored": "a commit Asset Hub made for itself"}
    with hub.catalog.session() as s:
        asset = s.scalar(select(Asset).where(Asset.repository == repository))
        dataset = AssetPath.parse(_path(asset)) if asset is not None else None
        rows = [_view(f) for f in s.scalars(select(Follow).where(Follow.dataset_id == asset.id)
                                            .order_by(Follow.id))] if asset is not None else []
    if dataset is None:
        return {"ignored": f"repository {repository!r} holds no asset"}
    if not rows:
        return {"ignored": f"nobody follows {dataset}", "dataset": str(dataset)}
    # every trigger re-checks each follow's owner: a follow whose owner left or lost a right is
    # paused (its triggers removed) before the event goes out, so no retrain of it starts
    paused: dict[str, str] = {}
    stuck = []
    active = 0
    for f in rows:
        if f.paused:
            paused[str(f.id)] = f.paused
            continue
        why = why_owner_cannot_retrain(hub, f)
        if not why:
            active += 1
            continue
        paused[str(f.id)] = why
        if not _pause(hub, f, why):
            stuck.append(f.id)
    out: dict[str, Any] = {"dataset": str(dataset), "follows": active}
    if paused:
        out["paused"] = paused
    if stuck:  # its automation may still be there: sending the event could run its retrain
        return {**out, "ignored": f"the triggers of paused follow(s) {stuck} could not be removed; "
                                  "no retrain was started"}
    if not active:
        return {**out, "ignored": f"every follow of {dataset} is paused"}
    commit = str(event.get("commit_id") or "") or hub.storage.resolve(dataset.at("main"))
    cause = str(event.get("event_type") or "")
    try:
        event_id = hub.follow_triggers.dataset_updated(str(dataset), commit, cause)
    except TriggersUnavailable as e:
        return {**out, "ignored": str(e)}
    return {**out, "commit": commit, "event_id": event_id}
