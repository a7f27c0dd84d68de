# The one command surface for humans and CI. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Install OS packages, the virtualenv and the Go-built control plane (idempotent, cached)
	@scripts/setup.sh

.PHONY: dev
dev: setup ## Bring the whole system up locally and transcode the embedded demo (Ctrl-C stops it)
	$(BIN)/mediaplane dev up

.PHONY: test
test: setup ## Run every test: lint, unit, and the real control plane / S3 / ffmpeg end to end
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: unit
unit: setup ## Run only the fast tests (no control plane)
	$(BIN)/pytest -m "not cluster" $(PYTEST_ARGS)

.PHONY: lint
lint: ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/mypy

.PHONY: down
down: ## Stop a detached dev environment
	$(BIN)/mediaplane dev down

.PHONY: lock
lock: ## Re-pin every transitive Python dependency into constraints.txt
	$(BIN)/pip freeze --exclude-editable --all | grep -v '^mediaplane' > constraints.txt

.PHONY: clean
clean: ## Remove caches of this checkout (not the cached binaries)
	rm -rf .mypy_cache .ruff_cache .pytest_cache

.PHONY: bench
bench: setup ## Benchmarks (not tests): pipeline latency vs SLOs and raw ffmpeg, p50/p95/p99
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.api_latency
