"""The hub's facade and its seams: Hub forwards every public method to the component that owns
it, what assethub.hub exports is pinned, and nothing outside the hub package reaches into a
hub's private names (follows and serving use public methods only)."""

from __future__ import annotations

import ast
from pathlib import Path

import assethub.hub
from assethub.hub import Hub

ROOT = Path(__file__).resolve().parents[2]


def test_every_facade_method_is_a_component_method_with_its_signature() -> None:
    forwarded = {name: v for name, v in vars(Hub).items() if type(v).__name__ == "_Forward"}
    assert len(forwarded) >= 58
    # deleting an asset or a folder also removes the follows naming it: the facade does both
    assert {"delete_asset", "delete_folder"} <= {n for n, v in vars(Hub).items() if callable(v)}
    for name, fwd in forwarded.items():
        owner = {"audit_log": assethub.hub.AuditLog, "identity": assethub.hub.Identity,
                 "permissions": assethub.hub.Permissions, "folders": assethub.hub.Folders,
                 "assets": assethub.hub.Assets, "versions": assethub.hub.Versions,
                 "jobs": assethub.hub.Jobs, "git_credentials": assethub.hub.GitCredentials,
                 "algorithms": assethub.hub.Algorithms, "settings": assethub.hub.JobSettings}[fwd.component]
        assert callable(getattr(owner, fwd.method)), name
        assert fwd.__doc__ == getattr(owner, fwd.method).__doc__, name


def test_the_public_exports_are_pinned() -> None:
    assert sorted(assethub.hub.__all__) == [
        "ANONYMOUS", "Algorithms", "AssetView", "Assets", "AuditLog", "AuditView", "BUNDLE_MAX_FILES",
        "CatalogLocator", "ConsoleLogin", "DatasetMeta", "EvaluationView",
        "FolderView", "Folders", "GitCredentials", "Hub",
        "Identity", "JobSettings", "Jobs",
        "Limits", "LineageView", "Permissions", "Principal", "ROLES", "RUN_KINDS", "RUN_STATES",
        "RUN_TRIGGERS", "RunView", "SUBJECT_TYPES", "Sessions", "ShareView", "TokenView", "UserView",
        "Versions", "require_admin", "require_user"]
    assert all(getattr(assethub.hub, n) is not None for n in assethub.hub.__all__)


def _private_hub_uses(source: str) -> list[tuple[int, str]]:
    """(line, name) of ``hub._x`` / ``self.hub._x`` / ``self._hub._x`` attribute reads."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else (
                base.attr if isinstance(base, ast.Attribute) else "")
            if name in ("hub", "_hub"):
                found.append((node.lineno, node.attr))
    return found


def test_nothing_outside_the_hub_package_uses_a_private_name_of_the_hub() -> None:
    hub_package = ROOT / "assethub" / "hub"
    files = [p for d in ("assethub", "tasks", "flows", "deployments") for p in (ROOT / d).rglob("*.py")
             if hub_package not in p.parents]
    found = [f"{p.relative_to(ROOT)}:{line}: hub.{attr}" for p in files
             for line, attr in _private_hub_uses(p.read_text())]
    assert not found, "private hub names used from outside assethub/hub:\n" + "\n".join(found)
