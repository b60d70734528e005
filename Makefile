# The two commands: `make run` and `make test`. Both set up what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Keep uv's downloads inside the checkout's venv tooling, never a user-wide cache surprise.
export UV_LINK_MODE := copy

.PHONY: install run demo test lint typecheck pytest bench clean

## install: create .venv with the locked dependencies (only when something changed)
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --inexact --python $(BIN)/python
	touch $@

## run: the bridge on http://127.0.0.1:8080 (SQLite in the per-user data folder, MCP pool)
run: install
	$(BIN)/ttrpg-bridge serve

## demo: a scripted session against the MCP server over stdio
demo: install
	$(BIN)/ttrpg-mcp demo

## test: lint, type-check and every test
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

## bench: latency, relay and fan-out side by side with peers (bench/results/*.json, *.png)
bench: install
	$(BIN)/python bench/stdio_latency.py
	$(BIN)/python bench/bridge_latency.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/resume.py
	$(BIN)/python bench/change_feed.py
	$(BIN)/python bench/server_overhead.py
	$(BIN)/python bench/tool_relay.py
	$(BIN)/python bench/table_fanout.py
	$(BIN)/python bench/plots.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
