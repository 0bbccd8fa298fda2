# Haven: `make run` starts it, `make test` proves it. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format clean install reliability bench bench-scale multihost contract

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start a local cluster on the embedded defaults: Valkey from the wheel, SQLite at
## var/haven.db, 3 instances (ports 4001-4003) behind nginx on port 8080. Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/haven up --instances 3 --lb nginx --lb-port $${PORT:-8080}

## Lint, then the whole suite (PostgreSQL too when HAVEN_TEST_DATABASE_URL is set).
## The multi-host testbed has its own target (it needs root and network namespaces).
## TEST_WORKERS processes share the suite, a test file per worker at a time (default 2;
## TEST_WORKERS=0 runs it in this process).
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest --ignore=tests/multihost --ignore=tests/contract --durations=25 \
		$(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup) $(PYTEST_ARGS)

## Five failure scenarios across hosts in network namespaces (root; see docs/reliability.md).
## HAVEN_MULTIHOST_REPORT=docs/reliability.md rewrites that file's Multi-host table.
multihost: $(STAMP)
	$(BIN)/python -m pytest tests/multihost -q -p no:cacheprovider $(PYTEST_ARGS)

## The API contract (docs/api-versioning.md): schemathesis with every check against 3 instances
## behind nginx, as each role, on SQLite and (HAVEN_TEST_DATABASE_URL) PostgreSQL; the generated
## Python client's main flow; the TypeScript types (npx). About 8 minutes, bounded per run.
contract: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,contract]'
	$(BIN)/python -m pytest tests/contract -q -p no:cacheprovider $(PYTEST_ARGS)

## Re-run the fault suite and rewrite docs/reliability.md with its table.
reliability: $(STAMP)
	HAVEN_RELIABILITY_REPORT=$(CURDIR)/docs/reliability.md $(BIN)/python -m pytest tests/e2e/test_faults.py -q

## Benchmark (not part of `make test`): Haven vs a raw ASGI baseline and two peers (Express +
## node-postgres, FastAPI + SQLAlchemy; bench/peers/), direct and via nginx.
## Writes bench/RESULTS.md and bench/ratios.png. BENCH_DURATION / BENCH_REPEATS tune it;
## BENCH_DATABASE_URL (or HAVEN_TEST_DATABASE_URL) points it at a PostgreSQL server.
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "make bench needs wrk (apt-get install wrk)"; exit 1; }
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "make bench needs node and npm for the Express peer (apt-get install nodejs npm)"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	cd bench/peers/express && npm ci --no-audit --no-fund --silent
	$(BIN)/python -m bench

## Scale bench: 1,000 vs 100,000 units (2M ledger entries) in throwaway PostgreSQL databases
## (BENCH_DATABASE_URL or HAVEN_TEST_DATABASE_URL); writes bench/RESULTS-scale.md.
## BENCH_SCALE_ARGS="--units 5000" for a quick run.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale $(BENCH_SCALE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
