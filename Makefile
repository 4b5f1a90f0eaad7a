# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000
# The environment to synthesize, deploy or destroy: dev or prod (infra/capabilities/names.py).
ENV ?= dev
# Optional: who gets the alarms by e-mail, and the sender's reserved concurrency (0: not reserved).
ALARM_EMAIL ?=
SENDER_RESERVED_CONCURRENCY ?=
# `make deploy APPROVAL=never` deploys without asking (CI); the default asks before any security-broadening change.
APPROVAL ?= broadening
CDK := npx --yes aws-cdk@2
CDK_CONTEXT := -c env=$(ENV) $(if $(ALARM_EMAIL),-c alarmEmail=$(ALARM_EMAIL)) \
	$(if $(SENDER_RESERVED_CONCURRENCY),-c senderReservedConcurrency=$(SENDER_RESERVED_CONCURRENCY))
CDK_APP := --app "$(BIN)/python infra/app.py"
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run demo test lint typecheck unit integration infra-test e2e synth deploy destroy bootstrap layer check-approval clean

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

# With `make run` going in another terminal: a campaign of MESSAGES sandbox messages, followed to the end.
MESSAGES ?= 1000
demo: $(VENV)/.stamp-local
	$(BIN)/python -m wabacast_local.demo --messages $(MESSAGES)

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
$(LAYER_STAMP): pyproject.toml infra/build_layer.py infra/lambda_platform.py $(shell find layers/shared -name '*.py' -o -name '*.json') | $(VENV)/.stamp-infra
	$(BIN)/python infra/build_layer.py
	touch $@

layer: $(LAYER_STAMP)

# Offline (no AWS credentials): cdk.out/Wabacast-$(ENV).template.json, checked by cdk-nag on the way.
synth: $(LAYER_STAMP)
	$(BIN)/python infra/app.py $(CDK_CONTEXT)

check-approval:
	@case "$(APPROVAL)" in never|any-change|broadening) ;; \
	  *) echo "APPROVAL must be broadening (the default), any-change or never, not '$(APPROVAL)'" >&2; exit 1;; esac

# Once per AWS account and region (docs/operations.md).
bootstrap:
	$(CDK) bootstrap

deploy: check-approval $(LAYER_STAMP) $(VENV)/.stamp-infra
	$(CDK) deploy $(CDK_APP) $(CDK_CONTEXT) --require-approval $(APPROVAL)

# What the API created at run time (account queues, dead-letter queues, their event source mappings, account
# secrets) is not the stack's: remove it first, reading the names from the stack's outputs, then the stack
# (`cdk destroy` asks for confirmation unless APPROVAL=never). See docs/operations.md, "Tearing down".
STACK_NAME := Wabacast-$(ENV)
destroy: check-approval $(LAYER_STAMP)
	$(BIN)/python -m wabacast_ops.resources remove --stack-name $(STACK_NAME) --yes
	$(CDK) destroy $(CDK_APP) $(CDK_CONTEXT) $(STACK_NAME) $(if $(filter never,$(APPROVAL)),--force)

clean:
	rm -rf $(VENV) cdk.out build .wabacast .pytest_cache .mypy_cache .ruff_cache
