# doc-review: `make run` starts the demo server, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-services bench clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py collectstatic --noinput -v0
	@echo "doc-review on http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	DEBUG=1 $(BIN)/daphne -e tcp:port=$(PORT):interface=$(HOST):backlog=1024 docreview.asgi:application

# The whole suite on the defaults (SQLite, in-memory layer), then the server
# tests again on PostgreSQL + Redis when those answer on 127.0.0.1 (always
# under REQUIRE_SERVICES=1, where a missing service fails the run).
test: install
	SECRET_KEY=test-secret-key FAST_PASSWORD_HASHER=1 $(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-services

test-services: install
	@if [ "$$REQUIRE_SERVICES" = "1" ] || $(BIN)/python tests/support/services_up.py; then \
	  echo "== server tests on PostgreSQL + Redis =="; \
	  SECRET_KEY=test-secret-key FAST_PASSWORD_HASHER=1 \
	  DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/docreview} \
	  REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/8} CHANNEL_PREFIX=drtest$$$$ \
	  $(BIN)/python -m pytest -m "e2e and not browser" $(PYTEST_ARGS); \
	else echo "PostgreSQL or Redis not on 127.0.0.1: skipped the second pass (REQUIRE_SERVICES=1 makes it required)"; fi

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .test-db.sqlite3* db.sqlite3*
