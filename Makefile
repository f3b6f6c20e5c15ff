# relay-manager: `make demo` runs the product, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATABASE_URL_PG ?= postgres://postgres@127.0.0.1:5432/postgres
# Demo and tests talk to simulators on loopback over plain http.
export RELAY_ALLOW_INSECURE_UPSTREAMS ?= 1

.PHONY: contract browser messages install demo topology test lint migrations-check openapi openapi-check test-sqlite test-pg clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Translation catalogs (.po → .mo, pure Python; the .mo files are never committed).
messages: install
	$(BIN)/python -m relay_project.compilemessages


# Browser tests drive Debian's Chromium; install it when missing (root on CI). When that is
# impossible the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium could not be installed: browser tests will be skipped"

# The demo keeps its own SQLite file (started afresh each time) and quick retries.
demo: install messages
	DEBUG=1 DATABASE_URL=sqlite:///$(CURDIR)/var/demo.sqlite3 RELAY_RETRY_BASE_DELAY=1 \
		RELAY_RETRY_MAX_DELAY=5 $(BIN)/python manage.py demo $(if $(ONCE),--once,)

# The production topology without Docker (PostgreSQL, Redis, 2 gunicorn, 2 clusters, DEBUG=0),
# checked end to end with the demo batch: docs/deployment.md.
topology: install messages
	bash scripts/topology.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

migrations-check: install
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

# docs/openapi.yaml is generated from the code; openapi-check fails when it is stale.
openapi: install
	DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

openapi-check: install
	@tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file "$$tmp" || exit 1; \
	diff -u docs/openapi.yaml "$$tmp" || { \
		echo "docs/openapi.yaml is stale: run 'make openapi' and commit the result"; exit 1; }

# Each run keeps its own var/ directory (RELAY_VAR_DIR: SQLite file, slot lock files,
# screenshots, hypothesis examples), so the two can run side by side (`make test`).
# Coverage is measured on the SQLite run, against the floor in pyproject.toml.
# Every test runs once at least, no test twice without need: when PostgreSQL answers, the
# schema fuzzing (tests/api/test_schemathesis.py: where a NUL byte or a 64-bit bound can
# break) and the tests in Chromium (the browser marker: what a page shows and does; every
# page's queries also run here through Django's test client) run on it alone, and the
# PostgreSQL run leaves out the tests that never touch the database (--database-tests-only:
# they ran here). Without PostgreSQL this run has them all.
SCHEMA_FUZZ := tests/api/test_schemathesis.py
test-sqlite: install messages browser
	@mkdir -p var/test-sqlite
	@if $(BIN)/python -m relay_project.pg_ready "$(DATABASE_URL_PG)"; then \
		echo "pytest -q --cov --ignore=$(SCHEMA_FUZZ) -m 'not browser' (they run on PostgreSQL)"; \
		set -- --ignore=$(SCHEMA_FUZZ) -m "not browser"; fi; \
	RELAY_VAR_DIR=$(CURDIR)/var/test-sqlite RELAY_SQLITE_TEST_NAME=$(CURDIR)/var/test-sqlite/test.sqlite3 \
		HYPOTHESIS_STORAGE_DIRECTORY=$(CURDIR)/var/test-sqlite/hypothesis \
		$(BIN)/pytest -q --cov --cov-report= "$$@"

# PostgreSQL run: required under CI=true, skipped with a note elsewhere when it does not answer.
test-pg: install messages browser
	@mkdir -p var/test-pg
	@if $(BIN)/python -m relay_project.pg_ready "$(DATABASE_URL_PG)"; then \
		echo "DATABASE_URL=$(DATABASE_URL_PG) pytest -q --database-tests-only"; \
		RELAY_VAR_DIR=$(CURDIR)/var/test-pg HYPOTHESIS_STORAGE_DIRECTORY=$(CURDIR)/var/test-pg/hypothesis \
		DATABASE_URL="$(DATABASE_URL_PG)" $(BIN)/pytest -q --database-tests-only; \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL at $(DATABASE_URL_PG) does not answer (required under CI)"; exit 1; \
	else \
		echo "skipped: PostgreSQL at $(DATABASE_URL_PG) does not answer"; \
	fi

# The quick checks first, then the SQLite and PostgreSQL runs side by side (one core each):
# make prints each run's output whole when it ends (--output-sync), waits for both, and fails
# when either fails.
test: lint migrations-check openapi-check
	@echo "pytest on SQLite and PostgreSQL side by side; each prints its output when it ends"
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-pg

clean:
	rm -rf $(VENV) var

# Speed and memory figures, all from one run (README "Benchmarks"); QUICK=1 for a short subset,
# BIG=1 adds the 10,000-entry run. The read side (100,000 items) and the PostgreSQL + Redis
# scenarios run on DATABASE_URL, else on PostgreSQL at DATABASE_URL_PG when it answers (no
# PostgreSQL: SQLite only, the PostgreSQL + Redis scenarios are skipped and say so).
bench: install
	@read_db="$${DATABASE_URL:-}"; \
	if [ -z "$$read_db" ] && $(BIN)/python -m relay_project.pg_ready "$(DATABASE_URL_PG)"; then \
		read_db="$(DATABASE_URL_PG)"; fi; \
	$(BIN)/python -m benchmarks.run $(if $(QUICK),--quick,) $(if $(BIG),--big,) $(if $(ITEMS),--items $(ITEMS),) \
		$${read_db:+--read-db "$$read_db"}

# The host contract, one line per fact: against the bundled simulator ([NEW] and [OLD]) and,
# with SUB2API_BASE_URL and SUB2API_ADMIN_KEY, against a real host (non-destructive: prefixed
# resource names, everything it creates is deleted). `make test` runs the simulator part.
contract: install
	$(BIN)/pytest tests/hosts/test_contract.py -v -p no:cacheprovider --no-header -rA \
		$(if $(SUB2API_BASE_URL),-k real-host,)
