"""The pure rules of the algorithm library and of models' job settings: names and versions,
resource requests, settings checked field by field, and the presets' repository (the same
content gives the same commit)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from assethub.errors import InvalidReferenceError
from assethub.hub.algorithms import check_name, check_resources, split_version
from assethub.hub.settings import check_settings
from assethub.presets import PRESETS
from assethub.server.presets import build_preset_repository


def test_names_and_versions() -> None:
    assert split_version("image-classification/digits-cnn") == ("image-classification/digits-cnn", None)
    assert split_version("tabular/forest@3") == ("tabular/forest", 3)
    for bad in ("forest", "Tabular/forest", "tabular/forest/x", "tabular/", "/forest", "a b/c"):
        with pytest.raises(InvalidReferenceError, match="<task type>/<name>"):
            check_name(bad)
    for bad in ("tabular/forest@0", "tabular/forest@x", "tabular/forest@"):
        with pytest.raises(InvalidReferenceError, match="version"):
            split_version(bad)


def test_resources_are_whole_cpu_and_gpu_counts() -> None:
    assert check_resources({"cpu": 2, "gpu": 1}) == {"cpu": 2, "gpu": 1}
    assert check_resources(None) == {}
    for bad, word in (({"tpu": 1}, "unknown resource"), ({"gpu": 1.5}, "whole number"),
                      ({"gpu": True}, "whole number"), ({"cpu": -1}, "whole number"), ([1], "mapping")):
        with pytest.raises(InvalidReferenceError, match=word):
            check_resources(bad)


def test_settings_are_checked_field_by_field() -> None:
    ok = check_settings({"repo": " https://x/y.git ", "dataset": "a/dataset/f/d:v1", "params": {"epochs": 2},
                         "resources": {"gpu": 1}, "revision": "", "train_command": None})
    assert ok == {"repo": "https://x/y.git", "dataset": "a/dataset/f/d:v1", "params": {"epochs": 2},
                  "resources": {"gpu": 1}}
    for bad, word in (({"colour": "red"}, "unknown job setting"),
                      ({"dataset": "a/model/f/m:main"}, "not a dataset"),
                      ({"subpath": "../up"}, "inside the repository"),
                      ({"params": {"x": [1]}}, "plain values"),
                      ({"repo": "x", "algorithm": "tabular/forest"}, "not both"),
                      ({"algorithm": "forest"}, "<task type>/<name>"),
                      ({"train_command": "a\nb"}, "one line")):
        with pytest.raises(InvalidReferenceError, match=word):
            check_settings(bad)


def test_the_preset_repository_is_deterministic(tmp_path: Path) -> None:
    present = [p for p in PRESETS if (p.dir / "assethub.yaml").is_file()]
    first = build_preset_repository(tmp_path / "a.git", present)
    again = build_preset_repository(tmp_path / "a.git", present)
    elsewhere = build_preset_repository(tmp_path / "b.git", present)
    assert first == again == elsewhere and len(first) == 40
    files = subprocess.run(["git", f"--git-dir={tmp_path / 'a.git'}", "ls-tree", "-r", "--name-only", first],
                           capture_output=True, text=True, check=True).stdout.split()
    assert f"{present[0].example}/assethub.yaml" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert {f.split("/")[0] for f in files} == {p.example for p in present}
