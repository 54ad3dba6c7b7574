# make demo / make test work on a fresh machine with nothing but Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: demo test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m vla.demo --out out/demo.mp4

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/pip install -e ".[bench]"
	$(BIN)/python benchmarks/sim_throughput.py
	$(BIN)/python benchmarks/expert_success.py --episodes 50
	$(BIN)/python benchmarks/collect_throughput.py

clean:
	rm -rf $(VENV) out .pytest_cache
