# hw4: the two commands are `make notebooks` and `make test` (see README.md).
# PROFILE=smoke|cpu|gpu picks the run profile of `make notebooks` (default: gpu
# when LibTorch sees CUDA, else cpu).
SHELL := /bin/bash
PROFILE ?=
NOTEBOOKS ?= $(filter-out notebooks/Quickstart.ipynb,$(wildcard notebooks/*.ipynb))
ENV := source scripts/env.sh &&

.PHONY: setup notebooks test test-rust test-notebooks lab bench gpu-bundle clean-outputs

setup:
	@scripts/setup

notebooks: setup
	$(ENV) python scripts/run_notebooks.py $(if $(PROFILE),--profile $(PROFILE)) notebooks/Quickstart.ipynb $(NOTEBOOKS)

test: setup test-rust test-notebooks

test-rust: setup
	$(ENV) cargo test --all-targets

test-notebooks: setup
	$(ENV) python -m pytest -q tests

# Training cells resume or load their checkpoints (HW4_TRAIN=auto, see README) in the lab.
# As root (containers) Jupyter refuses to start without --allow-root; it prints the URL to open.
lab: setup
	$(ENV) HW4_TRAIN=$${HW4_TRAIN:-auto} jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root)

bench: setup
	$(ENV) python bench/run.py

clean-outputs:
	rm -rf outputs

gpu-bundle: setup
	scripts/gpu-bundle
