# Two commands do all the set-up on a fresh machine: `make repro` (main job) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(shell command -v python3)  # resolved before PATH below puts the venv first
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install test test-fast test-torch-min repro ui bench report clean
export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

test: $(STAMP)  ## the whole test suite
	$(PY) -m pytest -q

test-fast: $(STAMP)  ## skip the tests that train or run a pipeline
	$(PY) -m pytest -q -m "not slow"

# The lowest torch/torchvision of pyproject.toml, with only what an offline GPU image has (no
# tonic, MLflow, DVC): its own venv, .venv-torch-min (4.9 GB). Measured here: 3.2 min from a
# cold pip cache (50 s of it the build), 2.4 min with the venv built.
test-torch-min:  ## neuron tests, a real train and the bench on the lowest declared torch
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PYTHON) scripts/test-torch-min

# The committed .dvc/config names no page template, so `dvc plots show` works on a fresh clone
# (DVC's own page, which loads Vega from a CDN); here the local config points at the offline one.
.dvc/plots/offline.html: $(STAMP)  ## DVC's plot page with Vega inlined (renders offline)
	$(VENV)/bin/mpdsnn plots dvc-templates .dvc/plots
	$(VENV)/bin/dvc config --local plots.html_template plots/offline.html

# One thread per training process unless told otherwise: these small models gain little from
# intra-op threads, and two OpenMP pools spinning on two cores slowed an epoch 30-60x here.
# Both cores: `mpdsnn pipeline train` trains the matrix in one long-lived process per core (the
# imports paid once each), then `dvc repro` records every stage, finding each run done.
repro: $(STAMP) .dvc/plots/offline.html  ## the main job: every method on the embedded datasets
	export OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}; time -p ( mpdsnn pipeline train $${JOBS:+--jobs $$JOBS} && dvc repro )

report: $(STAMP)  ## rebuild reports/ from run folders, no training
	mpdsnn report runs/default --out reports

ui: $(STAMP)  ## browse the pipeline's MLflow runs on http://127.0.0.1:5000
	mpdsnn ui

bench: $(STAMP)  ## neuron/model/pipeline benchmark on this machine
	mpdsnn bench --sizes cpu

clean:
	rm -rf $(VENV) .venv-torch-min .pytest_cache
