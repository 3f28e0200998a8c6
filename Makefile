# The two commands of the README:
#   make demo   set up and run the end-to-end demo on the built-in synthetic data
#   make test   set up and run the whole test suite (slow tests included)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench clean

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

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python benchmarks/bench_deeplab.py

clean:
	rm -rf runs .pytest_cache
