"""The ``assethub`` command line end to end, against the real server on the real lakeFS.

Each test makes its own users, folders and assets (the server is shared by the session). Every
failure must be one ``error: ...`` line on stderr with the documented exit code.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from assethub.cli import app
from tests.conftest import free_port

pytestmark = pytest.mark.integration

USAGE, NOT_FOUND, AUTH, PERMISSION, CONFLICT, UNREACHABLE = 2, 3, 4, 5, 6, 7


class Cli:
    """``assethub`` as one user: URL, token and config file in the environment."""

    def __init__(self, url: str, token: str | None, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.config = home / "config.json"
        self.env: dict[str, str | None] = {
            "ASSETHUB_URL": url, "ASSETHUB_TOKEN": token, "ASSETHUB_CONFIG": str(self.config),
            "ASSETHUB_HOME": str(home), "COLUMNS": "250"}

    def run(self, *args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(app, list(args), env=self.env, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"assethub {' '.join(args)} raised") from result.exception
        return result

    def __call__(self, *args: str, input: str | None = None) -> str:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, f"assethub {' '.join(args)}: {result.output}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def fails(self, code: int, *args: str) -> str:
        """Run a command that must fail: one 'error:' line on stderr and exit ``code``."""
        result = self.run(*args)
        assert result.exit_code == code, f"assethub {' '.join(args)}: {result.exit_code} {result.output}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.output
        return lines[0]


@pytest.fixture
def new_user(admin: Cli, hub_server: Any, tmp_path: Path) -> Callable[[], tuple[str, Cli]]:
    """Make a user the way an admin would, and sign them in with `assethub login`."""

    def make() -> tuple[str, Cli]:
        name = f"u{uuid.uuid4().hex[:8]}"
        admin("user", "create", name, "--email", f"{name}@example.org")
        secret = admin.json("token", "create", "--user", name, "--name", "laptop")["token"]
        cli = Cli(hub_server.url, None, tmp_path / name)
        out = cli("login", "--url", hub_server.url, input=secret + "\n")
        assert f"as {name}" in out
        assert secret not in out
        return name, cli

    return make


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def test_login_saves_the_token_and_whoami_uses_it(new_user: Callable[[], tuple[str, Cli]],
                                                 hub_server: Any) -> None:
    name, cli = new_user()
    assert cli.json("whoami")["name"] == name
    assert oct(cli.config.stat().st_mode & 0o777) == "0o600"
    assert [t["name"] for t in cli.json("token", "ls")] == ["laptop"]
    assert "laptop" in cli("token", "ls")
    stranger = Cli(hub_server.url, None, cli.config.parent / "stranger")
    err = stranger.fails(AUTH, "login", "--url", hub_server.url, "--token", "ah_not-a-token")
    assert "unknown API token" in err and "ah_not-a-token" not in err
    assert not stranger.config.exists()
    assert "sign in" in stranger.fails(AUTH, "whoami")


def test_model_history_branches_merge_and_tags(new_user: Callable[[], tuple[str, Cli]],
                                               tmp_path: Path) -> None:
    me, cli = new_user()
    folder, asset = f"{me}/model/vision", f"{me}/model/vision/resnet"
    cli("create", "folder", folder, "--description", "vision models")
    cli("create", "asset", asset, "--label", "cv", "-d", "a small net")
    src = write(tmp_path / "src", {"model.pt": "weights v1", "config/net.yaml": "depth: 50\n",
                                   "notes.txt": "hello"})
    out = cli("commit", f"{asset}:main", "-m", "first weights", "--add", str(src / "model.pt"),
              "--add", str(src / "config"), "--add", f"{src / 'notes.txt'}:docs/README.txt")
    assert out.startswith("committed ")
    files = {o["path"]: o for o in cli.json("ls", f"{asset}:main")}
    assert sorted(files) == ["config/net.yaml", "docs/README.txt", "model.pt"]
    assert files["model.pt"]["sha256"] and files["model.pt"]["size"] == len("weights v1")
    assert [o["path"] for o in cli.json("ls", f"{asset}:main", "--prefix", "config/")] == \
        ["config/net.yaml"]
    assert [f["path"] for f in cli.json("ls")] == [folder]
    assert [a["path"] for a in cli.json("ls", folder)] == [asset]
    assert "resnet" in cli("ls", folder)

    cli("create", "branch", asset, "dev")
    write(src, {"model.pt": "weights v2 (dev)"})
    cli("commit", f"{asset}:dev", "-m", "better weights", "--add", str(src / "model.pt"),
        "--delete", "docs/README.txt")
    diff = cli.json("diff", f"{asset}:main", "dev")
    assert {(d["path"], d["change"]) for d in diff} == {("model.pt", "changed"),
                                                         ("docs/README.txt", "removed")}
    assert "better weights" in cli("log", f"{asset}:dev", "-n", "5")
    assert cli.json("log", f"{asset}:dev")[0]["message"] == "better weights"
    refs = cli.json("ls", asset)
    assert {b["name"] for b in refs["branches"]} == {"main", "dev"}
    assert {b["name"] for b in cli.json("ls", "branches", asset)} == {"main", "dev"}

    # both sides change model.pt: a conflict, named, with a way out; then a strategy resolves it
    write(src, {"model.pt": "weights v2 (main)"})
    cli("commit", f"{asset}:main", "-m", "hotfix", "--add", str(src / "model.pt"))
    err = cli.fails(CONFLICT, "merge", asset, "dev", "-m", "merge dev")
    assert "model.pt" in err and "source-wins" in err
    assert "merged dev into main" in cli("merge", asset, "dev", "--strategy", "source-wins")
    assert [o["path"] for o in cli.json("ls", f"{asset}:main")] == ["config/net.yaml", "model.pt"]

    cli("create", "tag", asset, "v1", "--ref", "main")
    assert "already exists" in cli.fails(CONFLICT, "create", "tag", asset, "v1")
    assert [t["name"] for t in cli.json("ls", "tags", asset)] == ["v1"]
    assert cli.json("log", f"{asset}:v1")[0]["id"] == cli.json("log", f"{asset}:main")[0]["id"]

    cli("delete", "branch", asset, "dev", "--yes")
    assert {b["name"] for b in cli.json("ls", "branches", asset)} == {"main"}
    assert cli.run("delete", "asset", asset, input="n\n").exit_code != 0  # not confirmed
    cli("update", asset, "--rename", "resnet50", "--label", "cv", "--label", "imagenet")
    renamed = f"{folder}/resnet50"
    assert cli.json("search", "--owner", me)[0]["labels"] == ["cv", "imagenet"]
    assert cli.json("ls", f"{renamed}:v1")
    cli("delete", "asset", renamed, "--yes")
    assert cli.json("ls", folder) == []


def test_download_twice_transfers_nothing_the_second_time(new_user: Callable[[], tuple[str, Cli]],
                                                          tmp_path: Path) -> None:
    me, cli = new_user()
    asset = f"{me}/model/big files/blob #1 100% 网络"  # every name part goes into URLs
    cli("create", "folder", f"{me}/model/big files")
    cli("create", "asset", asset)
    payload = os.urandom(3 * 2**20 + 7)  # unique content: never in any cache before
    src = write(tmp_path / "src", {"weights.bin": payload, "meta/info.json": '{"epochs": 3}',
                                   "notes [draft] #2.txt": "not markup"})
    cli("upload", f"{asset}:main", str(src), "-m", "upload a tree")
    assert "notes [draft] #2.txt" in cli("ls", f"{asset}:main")
    first = cli("download", f"{asset}:main", str(tmp_path / "one"))
    assert "downloaded 3 files" in first and "0 bytes from the local cache" in first
    second = cli("download", f"{asset}:main", str(tmp_path / "two"))
    assert "downloaded 3 files" in second and ": 0 bytes transferred" in second
    assert (tmp_path / "two" / "notes [draft] #2.txt").read_text() == "not markup"
    assert (tmp_path / "two" / "weights.bin").read_bytes() == payload
    assert (tmp_path / "two" / "meta" / "info.json").read_text() == '{"epochs": 3}'
    cli("download", f"{asset}:main", str(tmp_path / "three"), "--prefix", "meta")
    assert [p.name for p in (tmp_path / "three").iterdir()] == ["info.json"]
    assert "no file 'nothing-here'" in cli.fails(NOT_FOUND, "download", f"{asset}:main",
                                                 str(tmp_path / "four"), "--prefix", "nothing-here")


def test_sharing_gives_exactly_the_role(admin: Cli, new_user: Callable[[], tuple[str, Cli]],
                                        tmp_path: Path) -> None:
    owner, alice = new_user()
    other, bob = new_user()
    folder, asset = f"{owner}/model/shared", f"{owner}/model/shared/net"
    alice("create", "folder", folder)
    alice("create", "asset", asset)
    src = write(tmp_path / "src", {"w.bin": "x"})
    alice("upload", f"{asset}:main", str(src / "w.bin"))

    assert "not found" in bob.fails(NOT_FOUND, "ls", f"{asset}:main")
    assert bob.json("ls") == []
    alice("share", folder, "--user", other, "--role", "view")
    assert [s["subject_name"] for s in alice.json("ls", "shares", folder)] == [other]
    assert [o["path"] for o in bob.json("ls", f"{asset}:main")] == ["w.bin"]
    assert [f["your_role"] for f in bob.json("ls")] == ["view"]
    bob("download", f"{asset}:main", str(tmp_path / "bob"))
    err = bob.fails(PERMISSION, "commit", f"{asset}:main", "-m", "mine now", "--add",
                    str(src / "w.bin"))
    assert "'view'" in err and "'edit'" in err
    bob.fails(PERMISSION, "create", "branch", asset, "bobs")
    bob.fails(PERMISSION, "share", folder, "--user", other, "--role", "edit")

    group = f"g{uuid.uuid4().hex[:8]}"
    admin("group", "create", group)
    admin("group", "add", group, other)
    assert {g["name"]: g["members"] for g in admin.json("group", "ls")}[group] == [other]
    alice("share", folder, "--group", group, "--role", "edit")
    bob("create", "branch", asset, "bobs")  # edit through the group
    alice("unshare", folder, "--group", group)
    alice("unshare", folder, "--user", other)
    assert "not found" in bob.fails(NOT_FOUND, "log", f"{asset}:main")
    assert "only an admin" in bob.fails(PERMISSION, "user", "ls")
    assert other in [u["name"] for u in admin.json("user", "ls")]


def test_datasets_import_publish_and_search(new_user: Callable[[], tuple[str, Cli]],
                                            tmp_path: Path) -> None:
    me, cli = new_user()
    dataset = f"{me}/dataset/pets/cats-dogs"
    cli("create", "folder", f"{me}/dataset/pets")
    cli("create", "asset", dataset, "--label", "images", "--task-type", "image_classification",
        "--format", "dir", "-d", "cats and dogs")
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cat/1.txt", "meow")
        z.writestr("dog/1.txt", "woof")
        z.writestr("README.md", "# pets")
    out = cli("import", dataset, str(archive), "-m", "first import")
    assert "imported 3 files" in out and "format dir" in out
    assert sorted(o["path"] for o in cli.json("ls", f"{dataset}:main")) == \
        ["README.md", "cat/1.txt", "dog/1.txt"]
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("loose.txt", "not in a class folder")
    assert "top level" in cli.fails(USAGE, "import", dataset, str(bad))

    assert "published" in cli("publish", dataset, "v1")
    cli.fails(CONFLICT, "publish", dataset, "v1")
    assert "cannot be deleted" in cli.fails(PERMISSION, "delete", "tag", dataset, "v1", "--yes")
    assert "only the 'main' branch" in cli.fails(PERMISSION, "create", "branch", dataset, "dev")
    assert cli.json("search", "--label", "images", "--owner", me)[0]["published"][0][0] == "v1"
    assert [a["path"] for a in cli.json("search", "dogs", "--kind", "dataset")
            if a["path"] == dataset] == [dataset]
    assert cli.json("search", "no-such-words-anywhere", "--owner", me) == []
    assert "admin" in cli.fails(PERMISSION, "update", dataset, "--preset")


def test_audit_shows_your_own_events(admin: Cli, new_user: Callable[[], tuple[str, Cli]]) -> None:
    me, cli = new_user()
    cli("create", "folder", f"{me}/model/audited")
    cli.fails(PERMISSION, "create", "folder", "admin/model/not-mine")
    events = cli.json("audit")
    assert {(e["action"], e["outcome"]) for e in events} >= {("folder.create", "ok"),
                                                             ("folder.create", "denied")}
    assert {e["actor"] for e in events} == {me}
    assert "folder.create" in cli("audit", "--limit", "5", "--since", "2000-01-01")
    assert cli.json("audit", "--since", "2999-01-01") == []
    cli.fails(PERMISSION, "audit", "--actor", "admin")
    assert admin.json("audit", "--actor", me, "--action", "folder.create", "--limit", "10")


def test_bad_input_gives_one_line_errors(new_user: Callable[[], tuple[str, Cli]],
                                         hub_server: Any, tmp_path: Path) -> None:
    me, cli = new_user()
    asset = f"{me}/model/errs/net"
    cli("create", "folder", f"{me}/model/errs")
    cli("create", "asset", asset)
    assert "asset type" in cli.fails(USAGE, "log", f"{me}/notakind/errs/net")
    assert "expected <owner>/<model|dataset>/<folder>/<name>" in cli.fails(USAGE, "log", "just-a-name/x")
    assert "no branch, tag or commit" in cli.fails(NOT_FOUND, "log", f"{asset}:no-such-branch")
    assert "invalid ref" in cli.fails(USAGE, "ls", f"{asset}:bad ref")
    assert "invalid branch" in cli.fails(USAGE, "create", "branch", asset, "bad.name")
    assert "missing.txt" in cli.fails(NOT_FOUND, "commit", f"{asset}:main", "-m", "x", "--add",
                                      str(tmp_path / "missing.txt"))
    assert "nothing to commit" in cli.fails(CONFLICT, "commit", f"{asset}:main", "-m", "empty")
    assert "'model' or 'dataset'" in cli.fails(USAGE, "ls", f"{me}/weights")
    assert "exactly one" in cli.fails(USAGE, "share", f"{me}/model/errs", "--role", "view")
    assert "already exists" in cli.fails(CONFLICT, "create", "asset", asset)
    nowhere = f"http://127.0.0.1:{free_port()}"  # free a moment ago: nothing listens there
    down = Cli(nowhere, "ah_whatever", tmp_path / "down")
    err = down.fails(UNREACHABLE, "ls")  # the server, not lakeFS, is what is missing
    assert nowhere in err and "assethub up" in err and "ah_whatever" not in err
