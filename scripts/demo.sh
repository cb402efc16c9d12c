#!/usr/bin/env bash
# `make demo`: a dataset, then train / evaluate / continue-train / merge-if-better as Prefect
# flows tracked in MLflow, with lineage, all through the `assethub` CLI on the embedded stack
# (lakeFS, MLflow and the Asset Hub server, on loopback).
set -euo pipefail
export COLUMNS=${COLUMNS:-150}  # rich tables: do not squeeze to 80 columns in a pipe
cd "$(dirname "$0")/.."
RUN=${RUN:-uv run --frozen}
WORK=$(mktemp -d -t assethub-demo-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DATASET=demo/dataset/image-classification/digits
MODEL=demo/model/image-classification/digits-cnn

ah() { printf '\n\033[1;34m$ assethub %s\033[0m\n' "$*"; $RUN assethub "$@"; }
step() { printf '\n\033[1m# %s\033[0m\n' "$*"; }

step "start lakeFS and the server; the CLI is logged in as the bootstrap admin"
ah up
ah whoami

step "the demo starts afresh: remove what an earlier run made"
$RUN assethub delete folder demo/dataset/image-classification --yes >/dev/null 2>&1 || true
$RUN assethub delete folder demo/model/image-classification --yes >/dev/null 2>&1 || true

step "a dataset from real data: scikit-learn's digits as PNG files in class folders"
$RUN python examples/datasets.py digits "$WORK/digits"
ah create folder demo/dataset/image-classification --description "Image classification data"
ah create asset "$DATASET" --description "Handwritten digits, 10 classes" --label digits \
   --label sklearn --task-type image_classification --format dir --test-set-path test
ah upload "$DATASET:main" "$WORK/digits" -m "Add scikit-learn digits"
ah publish "$DATASET" v1
printf '\nLicense: BSD-3-Clause (scikit-learn).\n' >> "$WORK/digits/README.md"
ah commit "$DATASET:main" -m "Add the license to the README" --add "$WORK/digits/README.md:README.md"

step "training code: a Git repository made from examples/digits-classifier (PyTorch Lightning)"
cp -r examples/digits-classifier "$WORK/code"
git -C "$WORK/code" init -q -b main
git -C "$WORK/code" add -A
git -C "$WORK/code" -c user.name=demo -c user.email=demo@example.org commit -q -m "digits classifier"
cat "$WORK/code/assethub.yaml"

step "the algorithm library: presets that ship with Asset Hub (typed params, versioned, shared like folders)"
ah algorithms ls
ah algorithms show image-classification/digits-cnn

step "the model keeps its job settings (a commit in the model): a registered algorithm and the dataset"
ah create folder demo/model/image-classification
ah create asset "$MODEL" --description "A small CNN on digits" --label digits
ah configure "$MODEL" --algorithm image-classification/digits-cnn --dataset "$DATASET:v1"

step "train with nothing but the model's name (a Prefect flow, tracked in MLflow), then evaluate"
ah train "$MODEL" --branch first
ah evaluate "$MODEL:first"

step "continue training one more epoch into a new branch, now with our own repository's code (options override the settings)"
ah continue-train "$MODEL:first" --dataset "$DATASET:v1" --repo "$WORK/code" --param epochs=1 --branch more
ah evaluate "$MODEL:more" --dataset "$DATASET:v1" --repo "$WORK/code"

step "merge the better model into main (each merge only if it beats main's accuracy)"
ah merge "$MODEL" first --metric accuracy
ah merge "$MODEL" more --metric accuracy
ah create tag "$MODEL" v1

step "lineage, comparison, runs, history"
ah lineage "$MODEL:main"
ah compare "$MODEL:first" "$MODEL:more"
ah runs "$MODEL"
ah log "$MODEL:main" -n 6
ah ls "$MODEL:v1"
ah diff "$DATASET:v1" "$DATASET:main"
ah search digits
ah audit --limit 5

step "where to look"
$RUN python scripts/demo_steps.py urls "$MODEL:main"

step "deployments: register them, then train through the Prefect worker (the run shows in the Prefect UI)"
ah deploy
# the worker acts as the service user `prefect` (no admin token): this run is registered as you
# and the worker takes it over with the run's own token; runs started from the Prefect UI act as
# `prefect` itself, which may use only what is shared with it:
ah share "${MODEL%/*}" --user prefect --role edit
ah share "${DATASET%/*}" --user prefect --role run
ah train "$MODEL" --dataset "$DATASET:v1" --repo "$WORK/code" --branch via-worker --deployment

step "data-triggered retraining: follow the dataset, commit new data, the retrain starts by itself"
ah follow "$MODEL" "$DATASET" --repo "$WORK/code" --metric accuracy
mkdir -p "$WORK/more/train/7"
for f in "$WORK"/digits/train/7/00*.png; do cp "$f" "$WORK/more/train/7/extra-$(basename "$f")"; done
ah upload "$DATASET:main" "$WORK/more" -m "More sevens"
$RUN python scripts/demo_steps.py wait-retrain "$MODEL"
ah runs "$MODEL" --kind retrain

step "serve the tagged model (MLflow's scoring server), scale it, test it online"
$RUN assethub services delete digits --yes >/dev/null 2>&1 || true
ah serve "$MODEL:v1" --name digits --replicas 1
$RUN python -c "import json; from examples.datasets import digits_test_arrays as t; x, y = t('$WORK/digits', limit=3); json.dump({'inputs': x.tolist()}, open('$WORK/three.json', 'w')); print('true labels:', y.tolist())"
ah services scale digits 2
ah services show digits
ah predict digits --input "$WORK/three.json"

step "the web console: the same hub in a browser (open these pages)"
$RUN python scripts/demo_steps.py console "$MODEL" "$DATASET" digits
