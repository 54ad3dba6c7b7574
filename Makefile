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
# episodes, how many actions of each chunk to run.
DEFAULT_TASKS := pick place stack push_to touch
MORE_TASKS := pick place stack push_to  # 800 more demonstrations each (data/more)
MORE2_TASKS := stack push_to  # 1,200 more each (data/more2), and 800 more of place
default-policy: install
	for t in $(DEFAULT_TASKS); do \
		$(BIN)/vla collect --task $$t --episodes 400 --out data/default/$$t --workers 2 || exit 1; \
	done
	for t in $(MORE_TASKS); do \
		$(BIN)/vla collect --task $$t --episodes 800 --seed 100000 --out data/more/$$t --workers 2 || exit 1; \
	done
	for t in $(MORE2_TASKS); do \
		$(BIN)/vla collect --task $$t --episodes 1200 --seed 300000 --out data/more2/$$t --workers 2 || exit 1; \
	done
	$(BIN)/vla collect --task place --episodes 800 --seed 300000 --out data/more2/place --workers 2
	$(BIN)/vla pretrain --config configs/pretrain.yaml --out runs/pretrain
	$(BIN)/vla train --config configs/default.yaml --out runs/default
	$(BIN)/vla dagger --config configs/dagger.yaml --checkpoint runs/default --out runs/dagger
	final=$$($(BIN)/python -c "import json; print(json.load(open('runs/dagger/dagger.json'))['final_checkpoint'])") && \
	$(BIN)/vla finetune --config configs/polish_referent_words.yaml --checkpoint $$final \
	   --out runs/referent_words
	rm -rf policies/checkpoints/default && mkdir -p policies/checkpoints/default && \
	cp runs/referent_words/checkpoint/config.json runs/referent_words/checkpoint/model.safetensors \
	   runs/referent_words/checkpoint/action_tokenizer.json \
	   runs/referent_words/checkpoint/action_contract.json policies/checkpoints/default/ && \
	$(BIN)/python -m vla.recipe runs/default runs/dagger runs/referent_words/checkpoint \
	   --pretrain runs/pretrain --after runs/referent_words > policies/checkpoints/default/recipe.json
	$(BIN)/python benchmarks/presence_score.py --write   # presence.json: the refusal threshold
	$(BIN)/python benchmarks/execute_steps.py --write     # execution.json: re-plan every N steps

clean:
	rm -rf $(VENV) out .pytest_cache
