# make demo / make test work on a fresh machine with nothing but Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: demo test install install-test lint bench clean default-policy

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

# Reproduce the shipped default policy: collect the demonstrations (400 per training task,
# then more of the harder tasks from other seeds), pretrain the grounding, train on every
# demonstration at once, one DAgger round (configs/dagger.yaml), a fine-tune whose trunk
# reads the command through its sentence embedding and the referents' words
# (configs/polish_referent_words.yaml), copy the checkpoint (without its optimizer state)
# into the package, then calibrate the refusal threshold and choose, on validation
# episodes, how many actions of each chunk to run. Each stage is skipped when done and
# resumed when cut short: after a kill, run it again (vla/default_policy.py).
default-policy: install
	$(BIN)/python -m vla.default_policy

clean:
	rm -rf $(VENV) out .pytest_cache
