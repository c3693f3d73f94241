# Chatsite: `make run` serves the app, `make test` runs the whole suite on Postgres.
PYTHON != sh scripts/find-python.sh || echo MISSING-PYTHON
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/chatsite
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/chatsite_bench

.PHONY: run test lint format bench install install-test services tools clean fake-api

$(BIN)/python:
	@if [ "$(PYTHON)" = "MISSING-PYTHON" ]; then sh scripts/find-python.sh; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e . 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import django, channels, anthropic" 
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test]" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import pytest, playwright, django, anthropic"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: migrate, create the first admin, serve the app on daphne with the task worker beside it.
run: install
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py ensure_admin
	@echo "Serving Chatsite on http://$(HOST):$(PORT)/"
	@echo "Background tasks (batch jobs, retention): manage.py db_worker runs beside it."
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py db_worker --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	DEBUG=$${DEBUG:-true} $(BIN)/daphne -b $(HOST) -p $(PORT) chatsite.asgi:application

## fake-api: serve the fake Anthropic API on a loopback port (tests, benchmarks, demos).
fake-api: install
	$(BIN)/python -m fakeanthropic --host 127.0.0.1 --port $${FAKE_PORT:-8765}

services:
	sh scripts/ensure-services.sh

tools:
	sh scripts/ensure-tools.sh

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## test: lint, then the suite on Postgres (+ Redis), then the browser tests in Chromium.
test: install-test services tools lint
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/pytest tests --ignore=tests/e2e -q
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/pytest tests/e2e -q

## bench: the benchmarks (bench/README.md), not part of `test`; BENCH_ARGS="--quick" to smoke.
bench: install-test services
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
