# Two entry points for a newcomer: `make demo` and `make test`. Both install what is missing.
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .demo
REPLICAS ?= 3

.PHONY: demo demo-down test unit api integration container manifests lint images secrets bench setup

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

# One tier each; scripts/test holds what a tier runs.
unit api integration manifests container lint: setup
	scripts/test $@

# The images the manifests name (ghcr.io/mysqlsts/mysqlsts-{server,init,sidecar}:<version>).
images: setup
	images/build.sh

# The Secret's files in k8s/secrets/ that are missing: random, mode 0600, never printed.
secrets:
	scripts/make-secrets

bench: setup
	scripts/bench
