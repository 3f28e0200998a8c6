# The two commands of the README:
#   make demo   set up and run the end-to-end demo on the built-in synthetic data
#   make test   set up and run the whole test suite (slow tests included)
# and, for CI, `make test-oldest`: the torch-free device-side tests (marker `runtime`) on Python 3.10
# with the oldest versions the device side claims (constraints-oldest.txt; no torch installed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Python 3.10, the Jetson's (JetPack 6): pyenv's if present, else python3.10 on PATH.
PYTHON310 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) python3.10)
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed

.PHONY: setup demo test test-fast test-oldest bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[train,report,events,dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/edge-snn demo --out runs/demo

test: setup
	$(BIN)/python -m pytest -q

$(OLDEST_STAMP): pyproject.toml constraints-oldest.txt
	$(PYTHON310) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c constraints-oldest.txt -e '.[dev]'
	touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/python -m pytest -q -m runtime

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python benchmarks/bench_deeplab.py

clean:
	rm -rf runs .pytest_cache
