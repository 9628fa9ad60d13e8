# UNetSeg developer commands.  `make run` starts the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint-imports bench dist clean train-models calibrate-models describe-models train-models-broad \
	finetune-large-cpu

install: $(STAMP)

# torch first: a bare "torch" requirement would pull a multi-GB CUDA build.  A torch that is
# already in the venv (CUDA, ROCm, a newer CPU build) is kept as it is.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[test,build]"
	@touch $@

run: install
	$(VENV)/bin/unetseg

lint-imports: install
	$(VENV)/bin/lint-imports

# The whole suite, including the packaged-app smoke test (tests/packaging), so the bundle is
# built (or brought up to date) first.
test: install lint-imports dist
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

# Everything but the packaged app and the slow tests; builds nothing.
test-fast: install lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "not packaging and not slow"

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf build dist .pytest_cache .hypothesis

# The standalone app: dist/unetseg/ runs without Python (docs/packaging.md).  Rebuilt only when
# the code, the resources, build.spec or pyproject.toml changed (2-3 minutes on 2 cores).
DIST_EXE := dist/unetseg/unetseg
DIST_INPUTS := build.spec pyproject.toml $(shell find core gui unetseg resources -type f \
	! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null)

dist: $(DIST_EXE)

$(DIST_EXE): $(STAMP) $(DIST_INPUTS)
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN build.spec
	@touch $@
	@du -sh dist/unetseg

# The built-in models: the exact recipe that produced resources/models/*.safetensors.
# About 7 minutes on one NVIDIA H100 (large, and the two small stages beside it); many hours on a CPU.
DATA ?= data/shapes
WORKERS ?= 4
train-models: install
	$(VENV)/bin/unetseg generate -o $(DATA) --count 6000 --seed 0 --workers $(WORKERS)
	$(VENV)/bin/unetseg train --images $(DATA)/images --masks $(DATA)/masks --arch small --batch 128 \
		--seed 0 --epochs 60 --lr 6e-3 --dice --lovasz --tta -o $(DATA)/small_stage1.safetensors
	$(VENV)/bin/unetseg train --images $(DATA)/images --masks $(DATA)/masks --arch small --batch 128 \
		--seed 0 --init $(DATA)/small_stage1.safetensors --epochs 25 --lr 2e-3 --dice --lovasz --patch 192 \
		-o resources/models/small.safetensors
	$(VENV)/bin/unetseg train --images $(DATA)/images --masks $(DATA)/masks --arch large \
		--epochs 30 --batch 32 --dice --seed 0 -o resources/models/large.safetensors
	$(MAKE) calibrate-models DATA=$(DATA) WORKERS=$(WORKERS)
	$(MAKE) describe-models

# Fits each built-in model's edge refinement on 300 scenes of a seed neither training (0) nor
# bench/quality.py (20261125) uses; rewrites the metadata, not the weights.  About 5 minutes on a CPU.
calibrate-models: install
	$(VENV)/bin/unetseg generate -o $(DATA)_calibration --count 300 --seed 1 --workers $(WORKERS)
	$(VENV)/bin/unetseg calibrate resources/models/small.safetensors \
		--images $(DATA)_calibration/images --masks $(DATA)_calibration/masks
	$(VENV)/bin/unetseg calibrate resources/models/large.safetensors \
		--images $(DATA)_calibration/images --masks $(DATA)_calibration/masks

# Writes each built-in model's description, menu summary and quality figures (core/model/builtin_notes.py)
# into its metadata; the tensors are copied byte for byte.
describe-models: install
	$(PY) -m core.model.builtin_notes

# Broader-appearance recipe (issue 15, core/training/appearance.py): fine-tune the shipped models on wider
# backgrounds, colour and camera damage and occlusion, then score the results on the independent set
# (bench/independent_quality.py: sources training never uses) and on the generator (bench/quality.py).
# Writes $(BROAD)/*.safetensors only: copy them over resources/models/ by hand, and only if they beat the
# shipped models on both benches.  Sized for one GPU (tens of minutes); many hours on a CPU.
BROAD ?= data/broad
train-models-broad: install
	$(VENV)/bin/unetseg generate -o $(BROAD) --count 6000 --seed 10 --workers $(WORKERS) --appearance broad
	$(VENV)/bin/unetseg train --images $(BROAD)/images --masks $(BROAD)/masks --arch large --init large \
		--epochs 20 --batch 32 --lr 1e-3 --dice --seed 0 -o $(BROAD)/large.safetensors
	$(VENV)/bin/unetseg train --images $(BROAD)/images --masks $(BROAD)/masks --arch small --init small \
		--epochs 25 --batch 128 --lr 2e-3 --dice --lovasz --patch 192 --seed 0 -o $(BROAD)/small.safetensors
	$(VENV)/bin/unetseg generate -o $(BROAD)_calibration --count 300 --seed 11 --workers $(WORKERS) --appearance broad
	$(VENV)/bin/unetseg calibrate $(BROAD)/large.safetensors --images $(BROAD)_calibration/images --masks $(BROAD)_calibration/masks
	$(VENV)/bin/unetseg calibrate $(BROAD)/small.safetensors --images $(BROAD)_calibration/images --masks $(BROAD)_calibration/masks
	$(PY) bench/independent_quality.py --models large small large=$(BROAD)/large.safetensors small=$(BROAD)/small.safetensors
	$(PY) bench/quality.py --models large small large=$(BROAD)/large.safetensors small=$(BROAD)/small.safetensors

# The CPU stand-in for train-models-broad when no GPU is at hand (issue 15 asks for one, and for a
# report of how far it got), about 70 minutes on 2 cores.  Stage 1: fine-tune the shipped large for
# 1,600 steps on broad scenes at a low learning rate.  Stage 2: 1,200 more steps at a lower rate on
# those scenes mixed half and half with the generator's own (seed 13), to win back the generator's
# look.  Then score it on both benches.  Writes $(BROAD_CPU)/large.safetensors only; same rule as
# above for shipping.
BROAD_CPU ?= data/broad_cpu
finetune-large-cpu: install
	$(VENV)/bin/unetseg generate -o $(BROAD_CPU) --count 1200 --seed 12 --workers $(WORKERS) --appearance broad
	$(VENV)/bin/unetseg train --images $(BROAD_CPU)/images --masks $(BROAD_CPU)/masks --arch large --init large \
		--epochs 4 --steps-per-epoch 400 --batch 16 --lr 3e-4 --dice --seed 0 --device cpu \
		-o $(BROAD_CPU)/large_stage1.safetensors
	$(VENV)/bin/unetseg generate -o $(BROAD_CPU)_plain --count 1200 --seed 13 --workers $(WORKERS)
	rm -rf $(BROAD_CPU)_mix && mkdir -p $(BROAD_CPU)_mix/images $(BROAD_CPU)_mix/masks
	for set in $(BROAD_CPU) $(BROAD_CPU)_plain; do for kind in images masks; do for f in $$set/$$kind/*; do \
		ln -s "$$(realpath $$f)" "$(BROAD_CPU)_mix/$$kind/$$(basename $$set)_$$(basename $$f)"; done; done; done
	$(VENV)/bin/unetseg train --images $(BROAD_CPU)_mix/images --masks $(BROAD_CPU)_mix/masks --arch large \
		--init $(BROAD_CPU)/large_stage1.safetensors --epochs 3 --steps-per-epoch 400 --batch 16 --lr 1.5e-4 \
		--dice --seed 1 --device cpu -o $(BROAD_CPU)/large.safetensors
	$(PY) bench/independent_quality.py --models large small large=$(BROAD_CPU)/large.safetensors
	$(PY) bench/quality.py --models large large=$(BROAD_CPU)/large.safetensors
