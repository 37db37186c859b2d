# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet '.[demo]'
	$(BIN)/lakecircle demo

test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(MAKE) lint
	$(BIN)/python -m pytest

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
