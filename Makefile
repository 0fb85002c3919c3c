# trailkeep build entry points. Every target installs what it needs.
SHELL := /bin/bash
GO    := $(shell scripts/ensure-go.sh)
export GOFLAGS := -buildvcs=false

ifeq ($(GO),)
$(error no Go toolchain: scripts/ensure-go.sh failed)
endif

.PHONY: all build run test lint bench fuzz clean

all: lint test

build:
	$(GO) build -o bin/trailctl ./cmd/trailctl

# Runs what exists today end to end over ../shared/fixtures: canonicalise,
# chain, sign, verify with only the public key, prove, detect tampering.
run: build
	TRAILCTL=bin/trailctl scripts/demo.sh

lint:
	@out=$$($(dir $(GO))gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test -count=1 ./...

# Figures for BENCHMARKS.md, on one core as the targets are stated.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 -benchtime 2s -count 3 ./pkg/event ./pkg/chain | tee bench.out

# Short coverage-guided fuzzing of the canonicaliser and the verifier.
fuzz:
	$(GO) test ./pkg/event -run '^$$' -fuzz FuzzCanonicalize -fuzztime 60s
	$(GO) test ./pkg/chain -run '^$$' -fuzz FuzzVerifier -fuzztime 60s

clean:
	rm -rf bin .run bench.out
