# The two set-up commands: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-sqlite test-services lint bench worker venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# A development checkout runs with DEBUG on (settings default to off); the file
# is only written when missing, so local changes to it are kept.
.env:
	printf '# Local development settings; every variable is in .env.example.\nDEBUG=true\n' > $@

venv: $(VENV)/.installed .env

# Create the virtualenv, install, migrate, seed (once), and serve on HOST:PORT.
demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py ensure_demo_user
	$(PY) -c "from strategies.compiled import kernels_load; kernels_load()"
	@echo ""
	@echo "  Backtesting lab: http://$(HOST):$(PORT)/"
	@echo "  Admin:           http://$(HOST):$(PORT)/admin/  (user 'admin', password from DEMO_ADMIN_PASSWORD, default 'admin')"
	@echo ""
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) backtester.asgi:application

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	DEBUG=false SECRET_KEY=lint-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz \
		$(PY) manage.py check --fail-level WARNING

# Lint, then the whole suite on the embedded default (SQLite, local memory,
# in-memory channel layer), then again on throwaway PostgreSQL and Redis servers
# when their binaries are installed. The engine's tests (strategies/) run on the
# first pass only: the engine never imports Django (a test reads its source), so
# no database, cache or channel layer can change what they check.
test: lint test-sqlite test-services

test-sqlite: venv
	env -u DATABASE_URL -u REDIS_URL \
		$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-services: venv
	@if $(PY) -c "import sys; sys.path.insert(0, 'scripts'); import services; \
		sys.exit(0 if services.postgres_bindir() and services.redis_binary() else 1)"; then \
		BTLAB_REQUIRE_SERVICES=1 CONN_MAX_AGE=0 $(PY) scripts/services.py -- \
			$(VENV)/bin/pytest -q --ignore=strategies/tests $(PYTEST_ARGS); \
	elif [ -n "$$BTLAB_CI" ]; then \
		echo "PostgreSQL or Redis server binaries not installed, and BTLAB_CI is set: failing" >&2; \
		exit 1; \
	else \
		echo "PostgreSQL or Redis server binaries not installed: skipping the pass on real servers"; \
	fi

# A Celery worker for BACKTEST_EXECUTOR=celery: it needs the REDIS_URL and the
# DATABASE_URL the web server uses (from the environment or .env), and runs
# CONCURRENCY worker processes (default: one per CPU).
CONCURRENCY ?= $(shell nproc 2>/dev/null || echo 2)
worker: venv
	$(VENV)/bin/celery -A backtester worker --loglevel=info --concurrency=$(CONCURRENCY)

bench: venv
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) staticfiles static/vendor .pytest_cache
