"""``assethub init DIR``: a new training repository from a preset, which trains as created.

    assethub init my-model                                  # the tabular preset (the fastest)
    assethub init my-cnn --preset image-classification/digits-cnn --name digits-cnn
    assethub init --list

The repository holds the preset's code (``assethub.yaml`` with typed params, the train and
evaluate scripts using ``assethub.runtime``), a test that runs both commands on a tiny dataset
through the training-code contract (``pytest`` in the repository), a README saying how to train
it with Asset Hub, a ``.gitignore``; it is a Git repository (branch ``main``) with one commit.
Nothing here talks to a server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from assethub.presets import PRESETS, Preset, preset

__all__ = ["DEFAULT_PRESET", "Created", "InitError", "create", "register"]

DEFAULT_PRESET = "tabular-classification/sklearn-forest"
FALLBACK_AUTHOR = ("Asset Hub", "assethub@localhost")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

GITIGNORE = """\
__pycache__/
*.pyc
.pytest_cache/
# what a run by hand writes (the job's output and metrics)
/out/
/output/
metrics.json
mlruns/
"""

# The tiny dataset each preset's generated test trains on: (function body, split, params).
# Made from data that installed packages ship: nothing is downloaded.
_TINY: dict[str, tuple[str, str, dict[str, object]]] = {
    "tabular-classifier": ('''\
    """scikit-learn's iris as one CSV table with a `label` column (150 rows)."""
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"})
    frame["label"] = [str(bunch.target_names[i]) for i in frame["label"]]
    root.mkdir(parents=True)
    frame.to_csv(root / "data.csv", index=False)
    return root
''', "0.8", {"n_estimators": 10}),
    "digits-classifier": ('''\
    """300 of scikit-learn's digits as 32x32 PNG files in class folders."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (img, label) in enumerate(zip(digits.images[:300], digits.target[:300])):
        out = root / str(label) / f"{i:04d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        pixels = (img * (255 / 16)).round().astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(out)
    return root
''', "0.8", {"epochs": 1}),
    "text-classifier": ('''\
    """80 short JSON Lines records of two topics."""
    import json

    topics = {"math": "the square root and the logarithm of a number {i}",
              "files": "copy the directory tree and remove the file {i}"}
    root.mkdir(parents=True)
    with (root / "data.jsonl").open("w") as f:
        for label, text in topics.items():
            for i in range(40):
                f.write(json.dumps({"id": f"{label}-{i}", "text": text.format(i=i), "label": label}) + "\\n")
    return root
''', "0.8", {"epochs": 2}),
}

_TEST = '''\
"""This repository's train and evaluate commands, run the way Asset Hub runs them: the commands
of assethub.yaml in a copy of the code, with the training-code contract's environment (the
ASSETHUB_* variables, see `assethub.runtime`), on a tiny dataset. Run `pytest` here, with a
Python environment that has Asset Hub installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from assethub.runtime import JobContext, Split, environment

ROOT = Path(__file__).resolve().parents[1]
SPLIT = {split!r}  # a training ratio, or the test set's path in the dataset
PARAMS = {params!r}  # small, to keep the test quick


def tiny_dataset(root: Path) -> Path:
{body}

def run(code: Path, kind: str, ctx: JobContext) -> subprocess.CompletedProcess[str]:
    """The command of ``kind`` (train or evaluate) in ``code``, as the runner starts it."""
    command = yaml.safe_load((code / "assethub.yaml").read_text())[kind]["command"]
    env = {{k: v for k, v in os.environ.items() if not k.startswith(("ASSETHUB_", "MLFLOW_"))}}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    done = subprocess.run(["/bin/sh", "-c", command], cwd=code, env={{**env, **environment(ctx)}},
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, (f"{{kind}} failed ({{done.returncode}}):\\n"
                                  f"{{done.stdout[-3000:]}}\\n{{done.stderr[-3000:]}}")
    return done


def test_train_then_evaluate(tmp_path: Path) -> None:
    code = Path(shutil.copytree(ROOT, tmp_path / "code",
                                ignore=shutil.ignore_patterns(".git", "tests", "__pycache__", "*.pyc")))
    data = tiny_dataset(tmp_path / "data")
    trained = JobContext(job="train", dataset_dir=data, output_dir=tmp_path / "model", base_model_dir=None,
                         params=PARAMS, split=Split.parse(SPLIT, data),
                         metrics_file=tmp_path / "train-metrics.json")
    run(code, "train", trained)
    assert (trained.output_dir / "model" / "MLmodel").is_file(), "train wrote no MLflow model in model/"
    metrics = json.loads(trained.metrics_file.read_text())
    assert metrics["n_test"] > 0 and 0 <= metrics["accuracy"] <= 1

    evaluated = JobContext(job="evaluate", dataset_dir=data, output_dir=tmp_path / "evaluation",
                           base_model_dir=trained.output_dir, params=PARAMS, split=trained.split,
                           metrics_file=tmp_path / "evaluate-metrics.json")
    run(code, "evaluate", evaluated)
    # the saved model, loaded again, scores the test split exactly as training did
    assert json.loads(evaluated.metrics_file.read_text()) == metrics
'''

_README = """\
# {name}

A training repository for Asset Hub, made by `assethub init` from the preset `{preset}`
({task}). It trains on {data}.

It follows the training-code contract: `assethub.yaml` names the train and evaluate commands and
declares the typed parameters; the scripts read the job from the `ASSETHUB_*` environment through
`assethub.runtime`.

## Check it

```bash
pytest          # trains and evaluates on a tiny dataset, through the contract (tests/test_train.py)
```

## Train it with Asset Hub

Asset Hub fetches the code from Git (a URL, or a path on the server's machine), so commit your
changes first. Then, with `MODEL` a model asset you may edit and `DATASET:VERSION` a dataset you
may run:

1. **The CLI**:
   `assethub train MODEL --repo {repo} --dataset DATASET:VERSION --param {param}`
   (`assethub evaluate MODEL:BRANCH --repo ... --dataset ...` scores a version).
2. **The web console**: on the model's page, **Train** (`/a/MODEL/train`): the repository URL,
   the dataset and the parameters.
3. **Prefect**: the deployment `train/local` in the Prefect UI, or
   `python -m flows train --model MODEL --dataset DATASET:VERSION --repo {repo}`.

To share it as a named algorithm, register it (`assethub algorithms register ...` with this
repository's URL) and train with `--algorithm NAME` instead of `--repo`.

## Parameters

{params}

## About the code (from the preset)

{about}"""


class InitError(ValueError):
    """``assethub init`` cannot make the repository; the message says why and what to do."""


@dataclass(frozen=True)
class Created:
    directory: Path
    preset: Preset
    name: str
    files: tuple[str, ...]
    commit: str


def _params_table(code: Path) -> str:
    import yaml

    from assethub.params import declare

    spec = yaml.safe_load((code / "assethub.yaml").read_text()) or {}
    params = declare(spec.get("params") or {})

    def cell(text: str) -> str:
        return text.replace("|", "\\|")  # a choice's "a|b" must not split the table's row

    rows = [f"| `{p.name}` | {cell(p.describe())} | {cell(p.help)} |" for p in params.values()]
    return "\n".join(["| name | type | meaning |", "|---|---|---|", *rows]) if rows else "(none)"


def _first_param(code: Path) -> str:
    import yaml

    params = (yaml.safe_load((code / "assethub.yaml").read_text()) or {}).get("params") or {}
    for name, decl in params.items():
        default = decl.get("default") if isinstance(decl, dict) else decl
        if default not in (None, ""):
            return f"{name}={default}"
    return "name=value"


def _author() -> tuple[str, str]:
    """The author Git would use here, or Asset Hub's own."""
    def get(key: str) -> str:
        done = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    return get("user.name") or FALLBACK_AUTHOR[0], get("user.email") or FALLBACK_AUTHOR[1]


def _git(directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, check=False,
                              env=env)
    except FileNotFoundError:
        raise InitError("git is not installed: install it, then run `assethub init` again") from None
    if done.returncode != 0:
        raise InitError(f"git {args[0]} failed in {directory}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def create(directory: Path, preset_name: str = DEFAULT_PRESET, name: str = "") -> Created:
    """Make ``directory`` a new training repository from the preset; what was made.

    Refuses a directory that exists and is not empty, an unknown preset and a bad name before
    writing anything."""
    try:
        chosen = preset(preset_name)
    except KeyError as e:
        raise InitError(f"{e.args[0]} (`assethub init --list` shows them)") from None
    directory = directory.expanduser().absolute()
    name = name or directory.name
    if not _NAME.fullmatch(name):
        raise InitError(f"name {name!r} must be letters, digits, '.', '_' or '-' (give one with --name)")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InitError(f"{directory} exists and is not empty: give a new or empty directory")
    body, split, params = _TINY[chosen.example]
    source = chosen.dir
    made = not directory.exists()
    try:
        shutil.copytree(source, directory, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        spec = directory / "assethub.yaml"
        spec.write_text(re.sub(r"(?m)^name:.*$", f"name: {name}", spec.read_text(), count=1))
        about = ((source / "README.md").read_text().split("\n", 1)[-1].lstrip("\n")
                 .replace("\n## ", "\n### ")
                 .replace("python ../datasets.py", "python <Asset Hub>/examples/datasets.py"))
        (directory / "README.md").write_text(_README.format(
            name=name, preset=chosen.name, task=chosen.task_type.replace("_", " "), data=chosen.data,
            repo=directory, param=_first_param(directory), params=_params_table(directory), about=about))
        (directory / "tests").mkdir()
        (directory / "tests" / "test_train.py").write_text(
            _TEST.format(split=split, params=params, body=body.rstrip("\n") + "\n"))
        (directory / ".gitignore").write_text(GITIGNORE)
        author, email = _author()
        env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email,
               "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": email}
        _git(directory, "init", "-q", "-b", "main")
        _git(directory, "add", "-A")
        _git(directory, "commit", "-q", "-m",
             f"{name}: training code from the Asset Hub preset {chosen.name}", env=env)
        commit = _git(directory, "rev-parse", "HEAD")
        files = tuple(_git(directory, "ls-files").splitlines())
    except BaseException:
        if made:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for child in directory.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return Created(directory, chosen, name, files, commit)


def register(app: typer.Typer) -> None:
    """Add ``init`` to the ``assethub`` application."""

    @app.command()
    def init(directory: Annotated[Path | None, typer.Argument(
                 help="The new repository's directory (new, or empty).", show_default=False)] = None,
             preset_: Annotated[str, typer.Option(
                 "--preset", "-p", help="The preset to start from (see --list).")] = DEFAULT_PRESET,
             name: Annotated[str, typer.Option(help="The code's name in assethub.yaml and the README "
                                                    "(default: the directory's name).")] = "",
             list_: Annotated[bool, typer.Option("--list", help="List the presets and stop.")] = False,
             ) -> None:
        """Create a training repository from a preset: code, a test, a README, one Git commit."""
        if list_:
            for p in PRESETS:
                mark = "  (default)" if p.name == DEFAULT_PRESET else ""
                typer.echo(f"{p.name}{mark}\n    {p.task_type}: {p.data}")
            return
        if directory is None:
            typer.echo("error: give the new repository's directory: `assethub init DIR` "
                       "(`assethub init --list` shows the presets)", err=True)
            raise typer.Exit(2)
        try:
            made = create(directory, preset_, name)
        except InitError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"created {made.directory}: {made.name}, from the preset {made.preset.name} "
                   f"({len(made.files)} files, commit {made.commit[:8]} on main)")
        typer.echo("\nnext:\n"
                   f"  cd {made.directory} && pytest      # train and evaluate on a tiny dataset\n"
                   f"  assethub train MODEL --repo {made.directory} --dataset DATASET:VERSION\n"
                   f"  (the dataset: {made.preset.data}; README.md has the other ways to train it)")
