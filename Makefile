# fleetd — run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/fleetd/fleetd/internal/version.Version=$(VERSION) -X github.com/fleetd/fleetd/internal/version.Revision=$(REVISION)
# Every tracked file whose first line is a sh/bash shebang, plus scripts/lib.sh
# (sourced, so it has none); shellcheck reads them all.
SCRIPTS := $(sort scripts/lib.sh $(shell git ls-files 2>/dev/null | while read -r f; do [[ -f "$$f" ]] && head -n1 "$$f" | grep -qE '^\#!.*[/ ](ba)?sh$$' && echo "$$f"; done))

.PHONY: help build test test-unit test-integration bench fuzz lint demo kafka tools prereqs clean screenshot

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/fleetd
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/fleetd ./cmd/fleetd

prereqs: ## check (and as root on Debian, install) Java, Maven, Python
	scripts/prereqs.sh

kafka: prereqs ## assemble Kafka from Maven Central into the cache (KAFKA_VERSION=3.9.1 for another)
	scripts/kafka-dist.sh >/dev/null

# The four run at once: pip and module downloads wait on the network while
# the Go builds of terraform and packer use the CPU (a cold set-up is most of
# a cold make test). Any one failing fails the target.
tools: prereqs ## install moto and shellcheck into the cache's virtualenv; terraform v1.5.7 and packer v1.9.4 built from source
	@pids=(); \
	for s in tools terraform packer; do scripts/$$s.sh >/dev/null & pids+=($$!); done; \
	$(GO) mod download & pids+=($$!); \
	for p in "$${pids[@]}"; do wait "$$p"; done

test: lint kafka tools ## everything CI runs: lint, unit and integration tests (real Kafka, moto)
	scripts/test.sh

test-unit: ## unit tests only: no Java, Python or network
	$(GO) test -race -count=1 ./...

test-integration: kafka tools ## integration tests only (RUN=TestName to pick one)
	scripts/test.sh $(if $(RUN),-run '$(RUN)')

screenshot: kafka tools ## refresh docs/status-page.png from the status page's Chromium test
	FLEETD_UPDATE_SCREENSHOT=1 scripts/test.sh -run '^TestStatusPageInChromium$$'

fuzz: ## run every fuzz target for FUZZTIME (default 30s) each; failing inputs land in testdata/fuzz as seeds
	scripts/fuzz.sh

bench: kafka ## benchmarks; results go to docs/benchmarks.md
	scripts/bench.sh

lint: tools ## gofmt, go vet (with and without the integration tag), shellcheck, terraform fmt, packer fmt
	TF_CLI_CONFIG_FILE=/dev/null "$$(scripts/terraform.sh)" fmt -check -recursive -diff terraform/
	CHECKPOINT_DISABLE=1 "$$(scripts/packer.sh)" fmt -check -diff packer/
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	"$$(scripts/tools.sh)/shellcheck" -x $(SCRIPTS)

demo: kafka build ## replace a broker on a local fleet while a ledger proves nothing is lost
	scripts/demo.sh

clean: ## remove build output (caches stay)
	rm -rf bin
