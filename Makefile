# Asset Hub. `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen

.PHONY: attacks setup bubblewrap lakefs lakefs-stop postgres postgres-stop seaweedfs up up-distributed down status demo test test-serial test-unit lint bench bench-cli bench-flow bench-serving bench-data bench-console clean-stack

setup:  ## install uv (if missing) and the locked environment
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	# bytecode at install time, as pip does: with PYTHONDONTWRITEBYTECODE set (as on this machine)
	# every CLI command otherwise compiled httpx, rich and typer from source (0.3 of whoami's 0.7 s)
	UV_COMPILE_BYTECODE=1 $(UV) sync --frozen
	$(RUN) python -m compileall -q assethub

bubblewrap:  ## install bubblewrap if missing (root or sudo): user code (jobs, replicas) runs in its sandbox
	@command -v bwrap >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q bubblewrap; }

lakefs: setup  ## build (once) and start lakeFS on loopback
	$(RUN) python -m infra.lakefs start

lakefs-stop:
	$(RUN) python -m infra.lakefs stop

postgres: setup  ## install PostgreSQL if missing (root) and start it on loopback
	$(RUN) python -m infra.postgres start

postgres-stop:
	$(RUN) python -m infra.postgres stop

seaweedfs: setup  ## build (once) SeaweedFS's `weed`, the distributed profile's S3 object store
	$(RUN) python -m infra.seaweedfs build

up: setup bubblewrap  ## the embedded stack: lakeFS, the server, MLflow, Prefect + worker; the CLI is logged in as admin
	$(RUN) assethub up

up-distributed: setup bubblewrap seaweedfs  ## every piece on its production backend: PostgreSQL, S3 (SeaweedFS), lakeFS on both, ... (docs/distributed.md)
	$(RUN) python -m infra.lakefs build
	$(RUN) python -m infra.postgres install
	$(RUN) assethub up --profile distributed

down:  ## stop what `make up` / `make up-distributed` started (the home knows its profile)
	$(RUN) assethub down

status:
	$(RUN) assethub status

demo: setup bubblewrap  ## through the CLI on the embedded stack: dataset, model, branches, tags, merge, log, diff
	RUN="$(RUN)" bash scripts/demo.sh

test: setup bubblewrap  ## everything: lint, unit and integration tests, both profiles (pytest starts its own stacks)
	$(RUN) python -m infra.lakefs build
	$(RUN) python -m infra.seaweedfs build  # the distributed profile's object store (test_distributed.py)
	$(RUN) python -m infra.postgres install
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }  # the Prefect UI check
	$(RUN) ruff check assethub infra tasks flows deployments examples tests bench scripts
	$(RUN) mypy
	$(RUN) python scripts/test_parts.py  # pytest as two sessions side by side (tests/conftest.py PART_TWO)

test-serial: setup bubblewrap  ## as `make test`, but pytest as one session (slower; simpler to read)
	$(RUN) python -m infra.lakefs build
	$(RUN) python -m infra.seaweedfs build
	$(RUN) python -m infra.postgres install
	$(RUN) pytest

attacks: setup bubblewrap  ## the attacks suite: each isolation finding replayed as a non-admin (pytest -m attacks)
	$(RUN) python -m infra.lakefs build
	$(RUN) python -m infra.postgres install
	$(RUN) pytest -m attacks

test-unit: setup
	$(RUN) pytest tests/unit

lint: setup
	$(RUN) ruff check assethub infra tasks flows deployments examples tests bench scripts
	$(RUN) mypy

bench: lakefs  ## transfer benchmark against lakectl and boto3 (prints ratios)
	$(RUN) python bench/transfer.py

bench-cli: setup  ## `assethub whoami / ls / --help` against lakectl and a Python floor (prints ratios)
	$(RUN) python bench/cli.py

bench-flow: setup  ## flows.train against the same training script run directly (prints the overhead)
	$(RUN) python bench/flow_overhead.py

bench-serving: setup  ## a served model against `mlflow models serve` (requests/s, p50/p99, ratios)
	$(RUN) python bench/serving.py

bench-data: setup  ## pandas.read_parquet("assethub://...") against local disk and boto3; statistics per 10k samples
	$(RUN) python bench/data.py

bench-console: setup  ## console pages against the REST calls carrying the same data (1,000 assets, 10k files)
	$(RUN) python bench/console.py

clean-stack: lakefs-stop  ## stop the stack and remove its data (the built binaries stay cached)
	-$(RUN) assethub down
	$(RUN) python -m infra.postgres destroy
	rm -rf "$${ASSETHUB_HOME:-$$HOME/.assethub}"
