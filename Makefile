# Two entry points for a newcomer: `make demo` and `make test`. Both install what is missing.
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .demo
REPLICAS ?= 3

.PHONY: demo demo-down test unit integration container manifests lint images bench setup

demo:
	scripts/setup-host demo
	scripts/demo $(DEMO_DIR) $(REPLICAS)

demo-down:
	$(BIN)/mysqlsts local down --dir $(DEMO_DIR)

setup:
	scripts/setup-host test

# Every tier; CI runs exactly this through .ci/run.
test: setup
	scripts/test

unit: setup
	$(BIN)/pytest -q tests/unit

integration: setup
	$(BIN)/pytest -q tests/integration

manifests: setup
	$(BIN)/pytest -q tests/manifests

container: setup
	scripts/test container

lint: setup
	$(BIN)/ruff check mysqlsts tests
	$(BIN)/mypy
	$(BIN)/lint-imports

images: setup
	images/build.sh

bench: setup
	scripts/bench
