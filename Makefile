# mediaindex: `make run` serves the local runtime; `make test` runs every check. Both install what
# they need first (system packages with apt-get, Python packages into .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := ffmpeg espeak-ng
TEST_APT_PACKAGES := chromium sqlite3
PORT ?= 8000
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test deps deps-system deps-test-system deps-node lint imports typecheck pytest bench synth duplicates clean api-doc lock

run: deps
	$(BIN)/mediaindex serve --port $(PORT) --create-key local

test: deps deps-test-system deps-node
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=layers:. $(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -ra

deps: deps-system $(VENV)/.installed

deps-system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

deps-test-system:
	@missing=""; for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

# The faithful Step Functions checkers (asl-validator, aws-local-stepfunctions), pinned by the
# committed lock; reinstalled only when it changes. Without node, their tests skip.
ASL_DIR := tests/asl
deps-node: $(ASL_DIR)/node_modules/.package-lock.json

$(ASL_DIR)/node_modules/.package-lock.json: $(ASL_DIR)/package.json $(ASL_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(ASL_DIR) --no-audit --no-fund && touch $@; \
	else echo "npm not found: skipping $(ASL_DIR) (its tests skip without node)"; fi

# Reinstalls only when pyproject.toml changes. torch is pinned to the CPU build (==2.13.0).
$(VENV)/.installed: pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[local,infra,dev]'
	touch $@

# Regenerates the hashed lock of each deployable artifact (requirements/{layer,media,ml,encoder}.txt)
# from its pyproject extra; `make lock UPGRADE=1` takes the newest versions the extras allow. The
# artifact tests (tests/artifacts) build each artifact's environment from its lock, cached per lock
# hash in $(ARTIFACTS_CACHE), outside the checkout so that CI's fresh clone reuses it.
ARTIFACTS_CACHE := $(or $(MEDIAINDEX_ARTIFACTS_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mediaindex-artifacts)
PIP_TOOLS := pip-tools==7.6.2
lock: deps
	$(BIN)/pip install -q '$(PIP_TOOLS)'
	$(BIN)/python requirements/lock.py $(if $(UPGRADE),--upgrade)

lint: deps
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

imports: deps
	PYTHONPATH=layers:. $(BIN)/lint-imports --no-cache

typecheck: deps
	$(BIN)/mypy

pytest: deps
	$(BIN)/pytest -q -ra

# Regenerates the Reference section of docs/api.md (the HTTP contract) from the served OpenAPI.
api-doc: deps
	$(BIN)/python -m mediaindex.contract_doc

bench: deps
	$(BIN)/python -m bench

synth: deps
	$(BIN)/python app.py

clean:
	rm -rf $(VENV) .mediaindex cdk.out .pytest_cache .mypy_cache .ruff_cache $(ARTIFACTS_CACHE)
