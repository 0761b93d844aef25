# One entry point for developers and CI. `make run` and `make test` are the
# two commands a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ADDR ?= 127.0.0.1:8000

.PHONY: run stack test lint lock install migrate seed clean

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

# The full stack without Docker: gunicorn, a Celery worker and Celery beat
# (Procfile, run by honcho: one terminal, Ctrl-C stops all three) against the
# PostgreSQL and Redis in DATABASE_URL / REDIS_URL. Migrates and collects the
# static files first (with DEBUG off pages need the manifest). DEMO=1 also
# seeds the demo (with DEBUG off: set DEMO_PASSWORD). docs/operations.md.
WEB_CONCURRENCY ?= 2
WORKER_CONCURRENCY ?= 2
stack: $(STAMP)
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || \
	  { echo "make stack needs DATABASE_URL and REDIS_URL (docs/operations.md)" >&2; exit 2; }
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input -v0
	@if [ -n "$(DEMO)" ]; then $(BIN)/python manage.py seed_demo --allow-without-debug; fi
	@mkdir -p "$${ANFU_VAR_DIR:-var}"
	@echo "Portal: http://$(ADDR)/   health: http://$(ADDR)/healthz   (Ctrl-C stops everything)"
	PATH="$(CURDIR)/$(BIN):$$PATH" STACK_ADDR="$(ADDR)" ANFU_VAR_DIR="$${ANFU_VAR_DIR:-$(CURDIR)/var}" \
	  WEB_CONCURRENCY="$(WEB_CONCURRENCY)" WORKER_CONCURRENCY="$(WORKER_CONCURRENCY)" \
	  exec $(BIN)/honcho start -f Procfile

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
