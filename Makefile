# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint typecheck unit integration infra-test e2e synth deploy destroy layer clean

# One stamp per extra set, rebuilt only when pyproject.toml changes, so a second `make run` starts in seconds.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.stamp-local: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local]'
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local,test,infra]'
	touch $@ $(VENV)/.stamp-local $(VENV)/.stamp-infra

$(VENV)/.stamp-infra: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[infra]'
	touch $@

run: $(VENV)/.stamp-local
	$(BIN)/python -m wabacast_local --port $(PORT)

test: $(VENV)/.stamp-test lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadfile tests

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy layers/shared local functions infra ops

unit: $(VENV)/.stamp-test
	$(BIN)/python -m pytest tests/unit

integration: $(VENV)/.stamp-test
	$(BIN)/python -m pytest tests/integration

infra-test: $(VENV)/.stamp-test
	$(BIN)/python -m pytest tests/infra

e2e: $(VENV)/.stamp-test
	$(BIN)/python -m pytest tests/e2e

# The Lambda layer (dependencies for Linux + the wabacast package), built with pip's platform flags: no Docker.
# Rebuilt only when what goes into it changes, so `make synth` can depend on it. Its bytecode needs a Python of the
# runtime's version: LAYER_PYTHON=/path/to/python3.12 (else python3.12 on PATH; without one it ships source only).
LAYER_STAMP := build/layer.stamp
$(LAYER_STAMP): pyproject.toml infra/build_layer.py $(shell find layers/shared -name '*.py') | $(VENV)/.stamp-infra
	$(BIN)/python infra/build_layer.py
	touch $@

layer: $(LAYER_STAMP)

synth: $(LAYER_STAMP)
	$(BIN)/python infra/app.py

deploy: layer
	npx --yes aws-cdk@2 deploy --app "$(BIN)/python infra/app.py" --require-approval broadening

# What the API created at run time (account queues, dead-letter queues, their event source mappings, account
# secrets) is not the stack's: remove it first, reading the names from the stack's outputs, then the stack
# (`cdk destroy` asks for confirmation). See docs/operations.md, "Run-time resources".
STACK_NAME ?= Wabacast
destroy: $(VENV)/.stamp-infra
	$(BIN)/python -m wabacast_ops.resources remove --stack-name $(STACK_NAME) --yes
	npx --yes aws-cdk@2 destroy --app "$(BIN)/python infra/app.py" $(STACK_NAME)

clean:
	rm -rf $(VENV) cdk.out build .wabacast .pytest_cache .mypy_cache .ruff_cache
