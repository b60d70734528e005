# The two commands: `make run` and `make test`. Both set up what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Keep uv's downloads inside the checkout's venv tooling, never a user-wide cache surprise.
export UV_LINK_MODE := copy

.PHONY: install run demo test lint typecheck pytest pytest-store pytest-scaleout bench bench-client-if-possible clean web web-if-possible web-deps web-test e2e

# The web table (web/, SvelteKit): built by npm into web/build, then copied into the package so
# the bridge serves it and `uv build` ships it in the wheel.
NPM ?= npm
WEB := web
WEB_DIST := src/ttrpg_mcp/web_dist
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/static -type f 2>/dev/null) \
	$(wildcard $(WEB)/package.json $(WEB)/svelte.config.js $(WEB)/vite.config.ts $(WEB)/tsconfig.json)
HAVE_NPM := $(shell command -v $(NPM) 2>/dev/null)
NO_NPM := the web table needs Node.js 20.19+ and npm (Debian: apt-get install nodejs npm)
# Browsers come from the system (Debian's chromium), never from a download during npm ci.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

## install: create .venv with the locked dependencies (only when something changed)
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --inexact --python $(BIN)/python
	touch $@

## run: the bridge on http://127.0.0.1:8080 (SQLite in the per-user data folder, MCP pool)
run: install web-if-possible
	$(BIN)/ttrpg-bridge serve

## web: build the web table when it is missing or older than its sources
web: $(WEB_DIST)/index.html

web-if-possible:
ifeq ($(HAVE_NPM),)
	@echo "make: npm not found: $(NO_NPM); the bridge runs without the web table."
else
	@$(MAKE) --no-print-directory web
endif

# npm ci records what it installed in node_modules/.package-lock.json: reinstall when the lock moved.
web-deps: $(WEB)/node_modules/.package-lock.json

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	@test -n "$(HAVE_NPM)" || { echo "make: npm not found: $(NO_NPM)."; exit 1; }
	cd $(WEB) && $(NPM) ci --no-audit --no-fund

$(WEB_DIST)/index.html: $(WEB_SOURCES) $(WEB)/node_modules/.package-lock.json
	cd $(WEB) && $(NPM) run build
	rm -rf $(WEB_DIST)
	cp -R $(WEB)/build $(WEB_DIST)

# The fan-out benchmark's load client (bench/fanout_client, Node); without npm it uses Python.
FANOUT_CLIENT := bench/fanout_client

bench-client-if-possible:
ifeq ($(HAVE_NPM),)
	@echo "make: npm not found: bench/table_fanout.py falls back to its Python load client."
else
	@$(MAKE) --no-print-directory $(FANOUT_CLIENT)/node_modules/.package-lock.json
endif

$(FANOUT_CLIENT)/node_modules/.package-lock.json: $(FANOUT_CLIENT)/package-lock.json
	cd $(FANOUT_CLIENT) && $(NPM) ci --no-audit --no-fund

## demo: a scripted session against the MCP server over stdio
demo: install
	$(BIN)/ttrpg-mcp demo

## test: lint, type-check and every test, the web table's included; then, on PostgreSQL + Redis,
## every test whose store or backplane differs there (both configurations stay green)
test: install lint typecheck pytest pytest-store web-test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

TTRPG_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
TTRPG_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
SCALEOUT_ENV := TTRPG_TEST_DATABASE_URL=$(TTRPG_TEST_DATABASE_URL) TTRPG_TEST_REDIS_URL=$(TTRPG_TEST_REDIS_URL)

## pytest-store: `make test`'s second pass: the tests that open a store or a backplane, on PostgreSQL + Redis
## (the pure-logic tests and those marked sqlite run the same as in the first pass: left out)
pytest-store: install
	$(SCALEOUT_ENV) $(BIN)/pytest --only-store-dependent

## pytest-scaleout: every test as one node of several: fresh PostgreSQL databases and Redis keys of its own
pytest-scaleout: install
	$(SCALEOUT_ENV) $(BIN)/pytest

## web-test: svelte-check, generated types up to date, vitest, then the browser tests (e2e)
web-test: web-deps
	cd $(WEB) && $(NPM) run check
	cd $(WEB) && $(NPM) run check:types
	cd $(WEB) && $(NPM) run test:unit
	$(MAKE) --no-print-directory e2e

## e2e: Playwright in Debian's Chromium against a real bridge (screenshots in web/test-results/)
e2e: install web
	cd $(WEB) && $(NPM) run test:e2e

## bench: latency, relay and fan-out side by side with peers, resume, connect, idle memory, change feed (bench/results/*.json, *.png, summary.md)
bench: install bench-client-if-possible
	$(BIN)/python bench/stdio_latency.py
	$(BIN)/python bench/bridge_latency.py
	$(BIN)/python bench/mcp_endpoint.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/resume.py
	$(BIN)/python bench/connect.py
	$(BIN)/python bench/idle_memory.py
	$(BIN)/python bench/change_feed.py
	$(BIN)/python bench/server_overhead.py
	$(BIN)/python bench/tool_relay.py
	$(BIN)/python bench/table_fanout.py
	$(BIN)/python bench/multinode.py
	$(BIN)/python bench/plots.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis $(WEB_DIST) $(WEB)/build $(WEB)/node_modules
