# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet '.[demo]'
	$(BIN)/lakecircle demo

test: $(BIN)/python tools
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(MAKE) lint
	$(BIN)/python -m pytest

# promtool (Debian's prometheus package) checks the metrics output in the suite. As root
# with apt-get it is installed; otherwise those tests say how to install it.
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "note: promtool not found; install Debian's prometheus package to run the metrics checks"; fi; }

lint:
	$(BIN)/ruff check lakecircle tests bench
	$(BIN)/ruff format --check lakecircle tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python bench/plan_bench.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache .hypothesis
