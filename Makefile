# Haven: `make run` starts it, `make test` proves it. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format clean install reliability

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
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Re-run the fault suite and rewrite docs/reliability.md with its table.
reliability: $(STAMP)
	HAVEN_RELIABILITY_REPORT=$(CURDIR)/docs/reliability.md $(BIN)/python -m pytest tests/e2e/test_faults.py -q

lint: $(STAMP)
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
