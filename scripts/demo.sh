#!/usr/bin/env bash
# `make demo`: a dataset and a model with branches, tags and a merge, all through the
# `assethub` CLI on the embedded stack (lakeFS + the Asset Hub server, on loopback).
set -euo pipefail
export COLUMNS=${COLUMNS:-150}  # rich tables: do not squeeze to 80 columns in a pipe
cd "$(dirname "$0")/.."
RUN=${RUN:-uv run --frozen}
WORK=$(mktemp -d -t assethub-demo-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DATASET=demo/dataset/image-classification/digits
MODEL=demo/model/image-classification/digits-logreg

ah() { printf '\n\033[1;34m$ assethub %s\033[0m\n' "$*"; $RUN assethub "$@"; }
step() { printf '\n\033[1m# %s\033[0m\n' "$*"; }

step "start lakeFS and the server; the CLI is logged in as the bootstrap admin"
ah up
ah whoami

step "the demo starts afresh: remove what an earlier run made"
$RUN assethub delete folder demo/dataset/image-classification --yes >/dev/null 2>&1 || true
$RUN assethub delete folder demo/model/image-classification --yes >/dev/null 2>&1 || true

step "a dataset from real data: scikit-learn's digits as PNG files in class folders"
$RUN python scripts/demo_steps.py digits "$WORK/digits"
ah create folder demo/dataset/image-classification --description "Image classification data"
ah create asset "$DATASET" --description "Handwritten digits, 10 classes" --label digits \
   --label sklearn --task-type image_classification --format dir --test-set-path test
ah upload "$DATASET:main" "$WORK/digits" -m "Add scikit-learn digits"
ah publish "$DATASET" v1
printf '\nLicense: BSD-3-Clause (scikit-learn).\n' >> "$WORK/digits/README.md"
ah commit "$DATASET:main" -m "Add the license to the README" --add "$WORK/digits/README.md:README.md"

step "a model: train on the published version, commit, branch, train again, merge the best"
ah create folder demo/model/image-classification
ah create asset "$MODEL" --description "Logistic regression on digits" --label digits
ah download "$DATASET:v1" "$WORK/data"
ah download "$DATASET:v1" "$WORK/data-again"
$RUN python scripts/demo_steps.py train "$WORK/data" "$WORK/main" --c 0.1
ah upload "$MODEL:main" "$WORK/main" -m "Train logistic regression, C=0.1"
for c in 1 10; do
  ah create branch "$MODEL" "exp-c$c"
  $RUN python scripts/demo_steps.py train "$WORK/data" "$WORK/exp-c$c" --c "$c"
  ah commit "$MODEL:exp-c$c" -m "Train logistic regression, C=$c" \
     --add "$WORK/exp-c$c/model.pkl:model.pkl" --add "$WORK/exp-c$c/metrics.json:metrics.json" \
     --add "$WORK/exp-c$c/README.md:README.md"
done
BEST=$($RUN python scripts/demo_steps.py best "$WORK/exp-c1" "$WORK/exp-c10")
ah merge "$MODEL" "$BEST" -m "Merge $BEST: the best test accuracy"
ah create tag "$MODEL" v1

step "history"
ah log "$MODEL:main"
ah ls "$MODEL"
ah diff "$MODEL:main~1" "$MODEL:main"
ah diff "$DATASET:v1" "$DATASET:main"
ah ls "$MODEL:v1"
ah search digits
ah audit --limit 5
