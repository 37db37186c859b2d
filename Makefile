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
	$(BIN)/ruff check lakecircle tests bench deploy
	$(BIN)/ruff format --check lakecircle tests bench deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

# The full benchmark of issue 7 (20-40 minutes on 2 cores); `make bench BENCH_ARGS=--quick` for a smoke run.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache .hypothesis

# The soak of issue 8, too long for the suite: the daemon polling every second for about
# ten minutes against moto while a driver changes definitions and drifts buckets; prints
# RSS and open file descriptors over time and a verdict. MINUTES=3 make soak: shorter.
.PHONY: soak
soak: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python bench/soak.py --minutes $(or $(MINUTES),10)
