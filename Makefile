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

# Reproduce the shipped default policy: collect the demonstrations, pretrain, train, one
# DAgger round (configs/dagger.yaml), three polishing fine-tunes (configs/polish.yaml
# twice, then configs/polish_more.yaml on 800 more demonstrations per task), a last
# DAgger round (configs/dagger_final.yaml), copy the checkpoint (without its optimizer
# state) into the package.
DEFAULT_TASKS := pick place stack push_to touch
MORE_TASKS := pick place stack push_to  # 800 more demonstrations each for the last polish
default-policy: install
	for t in $(DEFAULT_TASKS); do \
		$(BIN)/vla collect --task $$t --episodes 400 --out data/default/$$t --workers 2 || exit 1; \
	done
	$(BIN)/vla pretrain --config configs/pretrain.yaml --out runs/pretrain
	$(BIN)/vla train --config configs/default.yaml --out runs/default
	$(BIN)/vla dagger --config configs/dagger.yaml --checkpoint runs/default --out runs/dagger
	dagger=$$($(BIN)/python -c "import json; print(json.load(open('runs/dagger/dagger.json'))['final_checkpoint'])") && \
	$(BIN)/vla finetune --config configs/polish.yaml --checkpoint $$dagger --out runs/polish_1
	$(BIN)/vla finetune --config configs/polish.yaml --checkpoint runs/polish_1 --out runs/polish
	for t in $(MORE_TASKS); do \
		$(BIN)/vla collect --task $$t --episodes 800 --seed 100000 --out data/more/$$t --workers 2 || exit 1; \
	done
	$(BIN)/vla finetune --config configs/polish_more.yaml --checkpoint runs/polish --out runs/polish_more
	$(BIN)/vla dagger --config configs/dagger_final.yaml --checkpoint runs/polish_more --out runs/dagger_final
	for t in stack push_to; do \
		$(BIN)/vla collect --task $$t --episodes 1200 --seed 300000 --out data/more2/$$t --workers 2 || exit 1; \
	done
	$(BIN)/vla collect --task place --episodes 800 --seed 300000 --out data/more2/place --workers 2
	dagger=$$($(BIN)/python -c "import json; print(json.load(open('runs/dagger_final/dagger.json'))['final_checkpoint'])") && \
	$(BIN)/vla finetune --config configs/polish_prior.yaml --checkpoint $$dagger --out runs/polish_prior
	final=runs/polish_prior/checkpoint && \
	rm -rf policies/checkpoints/default && mkdir -p policies/checkpoints/default && \
	cp $$final/config.json $$final/model.safetensors $$final/action_tokenizer.json \
	   $$final/action_contract.json policies/checkpoints/default/ && \
	$(BIN)/python -m vla.recipe runs/default runs/dagger $$final \
	   --pretrain runs/pretrain --polish runs/polish_1 --polish runs/polish \
	   --polish runs/polish_more --final-dagger runs/dagger_final --after runs/polish_prior \
	   > policies/checkpoints/default/recipe.json
	$(BIN)/python benchmarks/grounding_score.py --write   # grounding.json: the refusal threshold

clean:
	rm -rf $(VENV) out .pytest_cache
