"""A dataset's version graph, restore, and imports that make new versions, end to end through
the CLI (and the REST API for bad input) against the real server on the real lakeFS, with
scikit-learn's digits written as PNG files in class folders.

Each test makes its own users, folders and datasets (the server is shared by the session).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from tests.integration._api import API
from tests.integration.test_cli import CONFLICT, NOT_FOUND, PERMISSION, USAGE, Cli

pytestmark = pytest.mark.integration

# a lakeFS action on a branch that never exists: lakeFS parses it on every commit, runs it never
ACTION = """name: test
on:
  post-merge:
    branches: [no-such-branch]
hooks:
  - id: never
    type: webhook
    properties:
      url: http://127.0.0.1:9/never
"""
PER_CLASS = 6  # digits per class in an archive: enough to be real data, small enough to be quick


@pytest.fixture(scope="module")
def digits() -> dict[str, list[bytes]]:
    """scikit-learn's digits as PNG bytes (8x8 grayscale), by class."""
    bunch = load_digits()
    by_class: dict[str, list[bytes]] = {}
    for image, target in zip(bunch.images, bunch.target, strict=True):
        buf = io.BytesIO()
        Image.fromarray((image * 15).astype(np.uint8), mode="L").save(buf, format="PNG")
        by_class.setdefault(str(target), []).append(buf.getvalue())
    return by_class


def archive(tmp_path: Path, digits: dict[str, list[bytes]], classes: str, *,
            offset: int = 0, extra: dict[str, bytes] | None = None) -> Path:
    """A zip of ``<class>/<n>.png`` for each class in ``classes`` ("012": classes 0, 1, 2)."""
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.zip"
    with zipfile.ZipFile(path, "w") as z:
        for c in classes:
            for i, png in enumerate(digits[c][offset:offset + PER_CLASS]):
                z.writestr(f"{c}/{offset + i}.png", png)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def new_dataset(cli: Cli, owner: str, **settings: str) -> str:
    folder = f"{owner}/dataset/img-{uuid.uuid4().hex[:6]}"
    cli("create", "folder", folder)
    dataset = f"{folder}/digits"
    options = [x for k, v in settings.items() for x in (f"--{k.replace('_', '-')}", v)]
    cli("create", "asset", dataset, "--task-type", "image_classification", "--format", "dir",
        *options)
    return dataset


def files(cli: Cli, ref: str) -> dict[str, str]:
    """path -> SHA-256 of every file of a version."""
    return {o["path"]: o["sha256"] for o in cli.json("ls", ref)}


def classes(paths: dict[str, str] | list[str], prefix: str = "") -> set[str]:
    return {p[len(prefix):].split("/")[0] for p in paths if p.startswith(prefix) and p.endswith(".png")}


def test_versions_start_from_any_published_version_or_empty_and_the_graph_shows_it(
        new_user: Callable[[], tuple[str, Cli]], digits: dict[str, list[bytes]],
        tmp_path: Path) -> None:
    me, cli = new_user()
    dataset = new_dataset(cli, me)
    cli("import", dataset, str(archive(tmp_path, digits, "012", extra={"README.md": b"# digits"})))
    cli("publish", dataset, "v1")
    cli("import", dataset, str(archive(tmp_path, digits, "34")))
    cli("publish", dataset, "v2")
    v1, v2 = files(cli, f"{dataset}:v1"), files(cli, f"{dataset}:v2")
    assert classes(v1) == {"0", "1", "2"} and classes(v2) == {"0", "1", "2", "3", "4"}

    # a new version from v1 (not from main, which is v2): 5 and 6 added, 3 and 4 not there
    out = cli("import", dataset, str(archive(tmp_path, digits, "56")), "--from", "v1")
    assert "imported" in out
    from_v1 = files(cli, f"{dataset}:main")
    assert classes(from_v1) == {"0", "1", "2", "5", "6"}
    assert {p: h for p, h in from_v1.items() if p[0] not in "56"} == v1

    # a clean version of only the archive's files: nothing of before is left
    cli("import", dataset, str(archive(tmp_path, digits, "78")), "--mode", "replace")
    assert sorted(files(cli, f"{dataset}:main")) == sorted(
        f"{c}/{i}.png" for c in "78" for i in range(PER_CLASS))

    graph = cli.json("versions", dataset)
    tags = {t["tag"]: t for t in graph["published"]}
    assert [t["tag"] for t in graph["published"]] == ["v1", "v2"]
    head, from_v1_commit, v2_commit = graph["commits"][:3]
    assert head["main"] and head["commit_id"] == graph["main"]
    assert (head["based_on"], head["based_on_commit"]) == ("empty", "")
    assert (from_v1_commit["based_on"], from_v1_commit["based_on_commit"]) == \
        ("v1", tags["v1"]["commit_id"])
    assert v2_commit["tags"] == ["v2"] and v2_commit["commit_id"] == tags["v2"]["commit_id"]
    # v2 was made on top of main as it was then: v1's commit
    assert tags["v2"]["based_on_commit"] == tags["v1"]["commit_id"]
    assert not any(c["main"] for c in graph["commits"][1:])
    table = cli("versions", dataset)
    assert "v1" in table and "v2" in table and "main" in table and "empty" in table


def test_restore_makes_an_old_version_main_in_one_commit_and_loses_nothing(
        new_user: Callable[[], tuple[str, Cli]], digits: dict[str, list[bytes]],
        tmp_path: Path, hub_server: Any) -> None:
    me, cli = new_user()
    dataset = new_dataset(cli, me)
    cli("import", dataset, str(archive(tmp_path, digits, "01")))
    cli("publish", dataset, "v1")
    cli("import", dataset, str(archive(tmp_path, digits, "23")), "--mode", "replace")
    cli("publish", dataset, "v2")
    # the follows' lakeFS action, installed after v1: configuration, which a restore keeps
    storage = hub_server.hub.storage
    storage.install_action(f"{dataset}:main", "hook.yaml", ACTION, message="action")
    before = cli.json("log", f"{dataset}:main", "-n", "100")
    tags_before = cli.json("ls", "tags", dataset)

    out = cli("restore", dataset, "v1", "-m", "back to v1")
    assert "restored v1" in out
    assert files(cli, f"{dataset}:main") == files(cli, f"{dataset}:v1")
    after = cli.json("log", f"{dataset}:main", "-n", "100")
    assert len(after) == len(before) + 1  # one commit ...
    assert [c["id"] for c in after[1:]] == [c["id"] for c in before]  # ... and the history stays
    assert after[0]["message"] == "back to v1"
    assert cli.json("ls", "tags", dataset) == tags_before  # published versions never move
    assert files(cli, f"{dataset}:v2") and classes(files(cli, f"{dataset}:v2")) == {"2", "3"}
    assert storage.read_action(f"{dataset}:main", "hook.yaml") == ACTION
    head = cli.json("versions", dataset)["commits"][0]
    assert (head["restored"], head["based_on"], head["main"]) == ("v1", "v1", True)

    # restoring what main already holds changes nothing, and says so
    assert "nothing to commit" in cli.fails(CONFLICT, "restore", dataset, "v1").lower()
    assert "not found" in cli.fails(NOT_FOUND, "restore", dataset, "v9").lower()
    # a restore by commit id, back to v2
    cli("restore", dataset, cli.json("ls", "tags", dataset)[1]["commit_id"])
    assert files(cli, f"{dataset}:main") == files(cli, f"{dataset}:v2")


def test_a_separate_test_set_goes_into_the_test_split_checked_against_the_classes(
        new_user: Callable[[], tuple[str, Cli]], digits: dict[str, list[bytes]],
        tmp_path: Path) -> None:
    me, cli = new_user()
    dataset = new_dataset(cli, me)
    cli("import", dataset, str(archive(tmp_path, digits, "012")))
    train = files(cli, f"{dataset}:main")

    out = cli("import", dataset, str(archive(tmp_path, digits, "01", offset=100)), "--split", "test")
    assert "imported" in out
    now = files(cli, f"{dataset}:main")
    assert {p: h for p, h in now.items() if not p.startswith("test/")} == train
    assert sorted(p for p in now if p.startswith("test/")) == sorted(
        f"test/{c}/{100 + i}.png" for c in "01" for i in range(PER_CLASS))

    # a class the training data does not have is refused, by name, and nothing changes
    refused = cli.fails(USAGE, "import", dataset, str(archive(tmp_path, digits, "19", offset=120)),
                        "--split", "test")
    assert "9" in refused and "not in the training data" in refused
    assert files(cli, f"{dataset}:main") == now

    # a new test set replaces the test split (the training data stays)
    cli("import", dataset, str(archive(tmp_path, digits, "12", offset=140)), "--split", "test")
    now = files(cli, f"{dataset}:main")
    assert classes(now, "test/") == {"1", "2"} and len([p for p in now if p.startswith("test/")]) \
        == 2 * PER_CLASS
    assert {p: h for p, h in now.items() if not p.startswith("test/")} == train

    # a dataset whose split rule names its test set path imports there
    other = new_dataset(cli, me, test_set_path="holdout")
    cli("import", other, str(archive(tmp_path, digits, "01")))
    cli("import", other, str(archive(tmp_path, digits, "01", offset=50)), "--split", "test")
    assert classes(files(cli, f"{other}:main"), "holdout/") == {"0", "1"}
    # a test set before any training data: refused with what to do
    empty = new_dataset(cli, me)
    assert "training" in cli.fails(USAGE, "import", empty, str(archive(tmp_path, digits, "12")),
                                   "--split", "test")


def test_viewers_see_the_graph_only_editors_restore_or_import(
        new_user: Callable[[], tuple[str, Cli]], digits: dict[str, list[bytes]],
        tmp_path: Path) -> None:
    me, cli = new_user()
    viewer_name, viewer = new_user()
    _, stranger = new_user()
    dataset = new_dataset(cli, me)
    cli("import", dataset, str(archive(tmp_path, digits, "01")))
    cli("publish", dataset, "v1")
    cli("import", dataset, str(archive(tmp_path, digits, "23")))
    cli("share", dataset.rsplit("/", 1)[0], "--user", viewer_name, "--role", "view")
    state = files(cli, f"{dataset}:main")

    assert [t["tag"] for t in viewer.json("versions", dataset)["published"]] == ["v1"]
    assert "edit" in viewer.fails(PERMISSION, "restore", dataset, "v1")
    zip_ = str(archive(tmp_path, digits, "34"))
    for args in (["--from", "v1"], ["--mode", "replace"], ["--split", "test"]):
        assert "edit" in viewer.fails(PERMISSION, "import", dataset, zip_, *args)
    # someone it is not shared with cannot tell the dataset exists
    for args in (["versions", dataset], ["restore", dataset, "v1"],
                 ["import", dataset, zip_, "--from", "v1"]):
        assert "not found" in stranger.fails(NOT_FOUND, *args).lower()
    assert files(cli, f"{dataset}:main") == state


def test_bad_version_requests_are_refused_with_what_was_wrong(
        hub_server: Any, new_user: Callable[[], tuple[str, Cli]], digits: dict[str, list[bytes]],
        tmp_path: Path) -> None:
    me, cli = new_user()
    dataset = new_dataset(cli, me)
    cli("import", dataset, str(archive(tmp_path, digits, "01")))
    cli("publish", dataset, "v1")
    zip_ = str(archive(tmp_path, digits, "23"))
    assert "--mode add --from v1" in cli.fails(USAGE, "import", dataset, zip_, "--mode", "replace",
                                               "--from", "v1")
    assert "not found" in cli.fails(NOT_FOUND, "import", dataset, zip_, "--from", "v7").lower()
    assert "no files" in cli.fails(USAGE, "publish", dataset, "empty")
    assert "restore takes" in cli.fails(USAGE, "restore", dataset, "empty")
    model = f"{me}/model/m-{uuid.uuid4().hex[:6]}"
    cli("create", "folder", model)
    cli("create", "asset", f"{model}/net")
    assert "datasets" in cli.fails(PERMISSION, "versions", f"{model}/net")

    token = cli.env["ASSETHUB_TOKEN"]
    with httpx.Client(base_url=hub_server.url + API, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        r = http.post(f"/assets/{dataset}/import", params={"mode": "merge"},
                      content=Path(zip_).read_bytes())
        assert r.status_code in (400, 422) and "mode" in r.text
        r = http.post(f"/assets/{dataset}/restore", json={"version": "v1", "extra": 1})
        assert r.status_code in (400, 422)
        r = http.post(f"/assets/{dataset}/restore", json={"version": "../v1"})
        assert r.status_code == 400
        r = http.get(f"/assets/{dataset}/versions", params={"limit": 0})
        assert r.status_code in (400, 422)


def test_an_upload_starts_from_a_published_version_too(
        hub_server: Any, new_user: Callable[[], tuple[str, Cli]], digits: dict[str, list[bytes]],
        tmp_path: Path) -> None:
    """Over the REST API, then the SDK through the CLI (`upload --from`): files on top of v1,
    one commit each, recorded as based on v1."""
    me, cli = new_user()
    viewer_name, viewer = new_user()
    dataset = new_dataset(cli, me)
    cli("import", dataset, str(archive(tmp_path, digits, "01")))
    cli("publish", dataset, "v1")
    cli("import", dataset, str(archive(tmp_path, digits, "23")))
    cli("share", dataset.rsplit("/", 1)[0], "--user", viewer_name, "--role", "view")
    v1 = files(cli, f"{dataset}:v1")

    def http(who: Cli) -> httpx.Client:
        return httpx.Client(base_url=hub_server.url + API, timeout=60,
                            headers={"Authorization": f"Bearer {who.env['ASSETHUB_TOKEN']}"})

    with http(viewer) as h:
        assert h.post(f"/assets/{dataset}/uploads", json={"base": "v1"}).status_code == 403
    with http(cli) as h:
        started = h.post(f"/assets/{dataset}/uploads", json={"base": "v1"})
        assert started.status_code == 201, started.text
        upload = started.json()["upload_id"]
        assert h.put(f"/uploads/{upload}/files/9/new.png", content=digits["9"][0]).is_success
        commit = h.post(f"/uploads/{upload}/commit", json={"message": "v1 and a nine"}).json()
    assert commit["metadata"]["assethub.based_on"] == "v1"
    now = files(cli, f"{dataset}:main")
    assert {p: h for p, h in now.items() if p != "9/new.png"} == v1 and "9/new.png" in now
    head = cli.json("versions", dataset)["commits"][0]
    assert (head["based_on"], head["commit_id"]) == ("v1", commit["id"])

    extra = tmp_path / "extra" / "8"
    extra.mkdir(parents=True)
    (extra / "cli.png").write_bytes(digits["8"][0])
    viewer.fails(5, "upload", f"{dataset}:main", str(extra.parent), "--from", "v1")
    cli("upload", f"{dataset}:main", str(extra.parent), "--from", "v1")
    now = files(cli, f"{dataset}:main")
    assert {p: h for p, h in now.items() if p != "8/cli.png"} == v1 and "8/cli.png" in now
    assert cli.json("versions", dataset)["commits"][0]["based_on"] == "v1"
