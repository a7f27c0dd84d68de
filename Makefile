# The one command surface for humans and CI. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
TAG ?= 0.1.0
KIND_CLUSTER ?= mediaplane

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Install OS packages, the virtualenv and the Go-built control plane (idempotent, cached)
	@scripts/setup.sh

.PHONY: dev
dev: setup ## Bring the whole system up locally and transcode the embedded demo (Ctrl-C stops it)
	$(BIN)/mediaplane dev up

.PHONY: test
test: setup ## Run every test: lint, unit, and the real control plane / S3 / ffmpeg end to end
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -m "(not faults or faults_ci) and not realnode" $(PYTEST_ARGS)

.PHONY: test-faults
test-faults: setup ## The reliability suites: every fault scenario, hostile media, auth attacks
	$(BIN)/pytest tests/faults tests/hostile tests/attacks $(PYTEST_ARGS)

.PHONY: unit
unit: setup ## Run the fast tests: no server started (no control plane, no S3), under 30 s
	$(BIN)/pytest -m "not cluster and not storage and not packaging" $(PYTEST_ARGS)

.PHONY: test-real-node
test-real-node: ## A real node here (kubelet, containerd, runc; needs root): images built with BuildKit, the chart installed and exercised
	MEDIAPLANE_REAL_NODE=1 scripts/setup.sh
	$(BIN)/pytest -m realnode tests/realnode $(PYTEST_ARGS)

.PHONY: image-deps
image-deps: setup ## Install each image's distribution alone from wheels; print what it holds
	$(BIN)/pytest -s -q tests/packaging $(PYTEST_ARGS)

.PHONY: lint
lint: ## ruff, mypy --strict, hadolint (images/) and shellcheck (scripts/)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/hadolint images/Dockerfile
	$(BIN)/shellcheck scripts/*.sh .ci/run

.PHONY: docs
docs: ## Regenerate the README's table of error codes from api/errors.py
	$(BIN)/python -m mediaplane.api.errordocs README.md

.PHONY: chart-crds
chart-crds: ## Copy crds/ into charts/mediaplane (CRDs to crds/, the policy to files/)
	@for f in crds/*.yaml; do \
	  if grep -q '^kind: CustomResourceDefinition' "$$f"; then cp "$$f" charts/mediaplane/crds/; \
	  else cp "$$f" charts/mediaplane/files/; fi; \
	done

.PHONY: images
images: ## Build the operator, API and worker images (docker, or BuildKit here without one) and print their sizes (TAG=0.1.0)
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  for target in operator api worker; do \
	    docker build -f images/Dockerfile --target $$target -t mediaplane/$$target:$(TAG) . || exit 1; \
	  done; \
	  docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' --filter 'reference=mediaplane/*:$(TAG)'; \
	else \
	  $(BIN)/python -m mediaplane.devcluster.realnode.images --tag $(TAG); \
	fi

.PHONY: kind-up
kind-up: ## Docker users: a kind cluster with the images, S3 (SeaweedFS) and the chart installed
	scripts/kind-up.sh

.PHONY: kind-e2e
kind-e2e: ## Docker users: upload a clip through the API on the kind cluster and stream it
	scripts/kind-e2e.sh

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

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
	$(BIN)/python -m bench.api_requests
	$(BIN)/python -m bench.ladder_schedule
	$(BIN)/python -m bench.worker_start
	$(BIN)/python -m bench.api_latency
	$(BIN)/python -m bench.captions
	$(BIN)/python -m bench.ai_latency
	$(BIN)/python -m bench.chunks
	$(BIN)/python -m bench.scale
