# One entry point for developers and CI. `make run` and `make test` are the
# two commands a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ADDR ?= 127.0.0.1:8000

.PHONY: run test lint lock install migrate seed clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Development server with demo data: SQLite, no Redis, tasks and periodic
# jobs in-process. DEBUG=1 allows the development secrets (never in production).
run: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo "Portal: http://$(ADDR)/   (demo logins printed above)"
	DEBUG=1 $(BIN)/python manage.py serve $(ADDR)

# The whole suite. On PostgreSQL and Redis when DATABASE_URL / REDIS_URL are
# set (as .ci/run does); otherwise on SQLite with in-process fallbacks.
# One test: make test ARGS='tests/accounts/test_tenancy.py -k outsider'
test: $(STAMP)
	$(BIN)/pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

# Re-pin every dependency to what a fresh resolve gives today.
lock:
	rm -rf /tmp/anfu-lock && $(PYTHON) -m venv /tmp/anfu-lock
	/tmp/anfu-lock/bin/pip install --quiet --upgrade pip
	/tmp/anfu-lock/bin/pip install --quiet '.[dev]'
	/tmp/anfu-lock/bin/pip freeze --exclude anfu > constraints.txt

clean:
	rm -rf $(VENV) var/ staticfiles/
