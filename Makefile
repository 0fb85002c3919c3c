# trailkeep build entry points. Every target installs what it needs.
SHELL := /bin/bash
GO    := $(shell scripts/ensure-go.sh)
export GOFLAGS := -buildvcs=false

ifeq ($(GO),)
$(error no Go toolchain: scripts/ensure-go.sh failed)
endif

.PHONY: all build image-layout run run-stack stop test test-unit lint screenshots bench bench-console bench-peers bench-ingest bench-ingest-memory bench-otlp bench-pipeline bench-search bench-proof bench-dev bench-embedded bench-exporter fuzz clean kafka-start kafka-stop

all: lint test

# Release identity stamped into every binary (--version); see internal/version.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit date, not the build time: the same commit builds the same bytes.
DATE    ?= $(shell d=$$(git log -1 --format=%ct 2>/dev/null) && date -u -d @$$d +%Y-%m-%dT%H:%M:%SZ || date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X github.com/trailkeep/trailkeep/internal/version.Version=$(VERSION) -X github.com/trailkeep/trailkeep/internal/version.Commit=$(COMMIT) -X github.com/trailkeep/trailkeep/internal/version.Date=$(DATE)
# The service images; trailkeep (dev mode) is built too but not imaged: it loads libchdb.
IMAGES   := trailctl ingest chainer query exporter
BINARIES := $(IMAGES) trailkeep

build:
	@for b in $(BINARIES); do echo "go build $$b"; $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/$$b ./cmd/$$b || exit 1; done

# Container images without an engine: static binaries (as the Dockerfile builds them)
# written as an OCI image layout in bin/oci, one image per binary. Publish with e.g.
# `skopeo copy oci:bin/oci:ingest docker://REGISTRY/trailkeep/ingest:$(VERSION)`.
image-layout:
	@for b in $(IMAGES); do echo "go build (static) $$b"; CGO_ENABLED=0 $(GO) build -trimpath -tags timetzdata -ldflags '$(LDFLAGS)' -o bin/static/$$b ./cmd/$$b || exit 1; done
	$(GO) run ./internal/ociimage/build -bin bin/static -out bin/oci -version $(VERSION) -commit $(COMMIT) -created $(DATE)

# The one-command trial: trailkeep dev (the whole pipeline in one process on an
# embedded Kafka broker and an in-process ClickHouse engine), fed the shared
# fixtures; then search, SQL, prove, verify the archive offline, detect tampering.
run: build
	BIN=bin scripts/demo.sh

# The same over the distributed stack: the real Kafka broker, ClickHouse server,
# versitygw and one process per service.
run-stack: build
	TRAILCTL=bin/trailctl scripts/demo-stack.sh

# Stops what `make run` left running.
stop:
	@if [ -f .run/dev.pid ] && kill -0 $$(cat .run/dev.pid) 2>/dev/null; then echo "stopping trailkeep dev"; kill -- -$$(cat .run/dev.pid) 2>/dev/null || kill $$(cat .run/dev.pid); while kill -0 $$(cat .run/dev.pid) 2>/dev/null; do sleep 0.2; done; fi; rm -f .run/dev.pid
	scripts/exporter-local.sh stop
	scripts/versitygw.sh stop
	scripts/query-local.sh stop
	scripts/chainer-local.sh stop
	scripts/ingest-local.sh stop
	scripts/clickhouse.sh stop
	scripts/kafka.sh stop

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

lint:
	@out=$$($(dir $(GO))gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Integration tests start the real Kafka broker themselves (scripts/kafka.sh, through
# internal/kafkatest); a broker that cannot start fails them.
# The servers the tests start (Kafka, ClickHouse, versitygw) are stopped afterwards,
# unless they were running before: a `make run` stack is left as it was.
test: lint
	@before=$$(scripts/servers-running.sh | tr "\n" " "); \
	status=0; $(GO) test -count=1 -timeout 30m ./... || status=$$?; \
	for s in versitygw clickhouse kafka; do case " $$before " in *" $$s "*) ;; *) scripts/$$s.sh stop || true;; esac; done; \
	exit $$status

# The fast suite: -short skips every test that needs a real server (the one gate is
# internal/integration, called by the shared test helpers), so this starts nothing;
# it fails if a server is running afterwards that was not running before.
test-unit: lint
	@before=$$(scripts/servers-running.sh | tr "\n" " "); \
	$(GO) test -short -count=1 ./... || exit $$?; \
	for s in kafka clickhouse versitygw; do case " $$before " in *" $$s "*) ;; *) if scripts/$$s.sh status >/dev/null 2>&1; then echo "make test-unit started $$s: a unit test reached a server without the integration gate"; exit 1; fi;; esac; done

# The README's console images, taken by the browser test itself (headless Chromium
# against a real ClickHouse), written to docs/.
screenshots:
	TRAILKEEP_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 ./pkg/console -run 'TestConsoleSearchOpenAndVerify$$'

# Figures for BENCHMARKS.md, on one core as the targets are stated.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 -benchtime 2s -count 3 ./pkg/event ./pkg/chain ./pkg/ingest ./pkg/archive | tee bench.out

# Ingest throughput and ack latency against the local broker (figures in BENCHMARKS.md).
bench-ingest: build
	scripts/bench-ingest.sh

# Ingest peak RSS and throughput at 8, 32, 128 and 512 connections (BENCHMARKS.md).
bench-ingest-memory: build
	scripts/bench-ingest-memory.sh

# OTLP receiver records/s and ack latency at Claude Code's batch sizes (BENCHMARKS.md).
bench-otlp: build
	scripts/bench-otlp.sh

# Chainer and ClickHouse writer throughput, and ingest-ack -> ClickHouse-row lag at
# 10k events/s, against the local broker and server (figures in BENCHMARKS.md).
bench-pipeline:
	$(GO) test ./internal/e2e -run '^$$' -bench . -benchtime 1x -timeout 20m | tee bench-pipeline.out

# First-page search latency over a generated 10M-event log, a flat-memory 1M-row
# export, and one partition's reads (highest seq, a whole-partition stream) over the
# same log (figures in BENCHMARKS.md). The generated database is kept and reused.
bench-search:
	$(GO) test ./internal/e2e -run '^$$' -bench 'Search10M|Export1M|PartitionReads10M|Histogram10M' -benchtime 1x -timeout 60m | tee bench-search.out

# Inclusion and consistency proofs read from ClickHouse for a partition of 10M leaves
# (figures in BENCHMARKS.md). The generated tree is kept and reused.
bench-proof:
	$(GO) test ./internal/e2e -run '^$$' -bench 'Proof10M' -benchtime 1x -timeout 30m | tee bench-proof.out

# First page of console search results in headless Chromium over the generated
# 10M-event log (the same database as bench-search), through the query API.
bench-console:
	$(GO) test ./internal/e2e -run '^$$' -bench 'ConsoleFirstPage10M' -benchtime 1x -timeout 60m | tee bench-console.out

# trailkeep side by side with Tessera's POSIX log, alternating, same load generator
# (bench/peers, a module of its own so the product's go.mod has no Tessera): trailkeep
# dev, or with TRAILKEEP_PEERS_STACK=1 the distributed stack.
bench-peers:
	GO=$(GO) scripts/bench-peers.sh

# trailkeep dev on this machine: start-up, sustained NDJSON ingest with ack latency,
# RSS at TRAILKEEP_BENCH_DEV_EVENTS (default 1M) stored events, first-page search.
bench-dev:
	$(GO) test ./internal/e2e -run '^$$' -bench 'DevMode' -benchtime 1x -timeout 30m | tee bench-dev.out

# What storing an event costs dev's in-process ClickHouse engine, merges included,
# through the writer's Sink (TRAILKEEP_BENCH_EMBEDDED_BATCH rows an insert, default
# dev's 2,500; TRAILKEEP_BENCH_EMBEDDED_ALTER to drop or change a part of the DDL).
bench-embedded:
	$(GO) test ./pkg/store/clickhouse -run '^$$' -bench 'EmbeddedInsert' -benchtime 1x -count 3 -timeout 20m | tee bench-embedded.out

# Exporter throughput per sink (versitygw, in-process HEC and Datadog intake) and the
# memory a stalled sink holds (figures in BENCHMARKS.md).
bench-exporter:
	$(GO) test ./internal/e2e -run '^$$' -bench 'Export(S3|HEC|Datadog)|StalledSink' -benchtime 1x -timeout 30m | tee bench-exporter.out

# Short coverage-guided fuzzing of the canonicaliser and the verifier.
fuzz:
	$(GO) test ./pkg/event -run '^$$' -fuzz FuzzCanonicalize -fuzztime 60s
	$(GO) test ./pkg/event -run '^$$' -fuzz FuzzClassPattern -fuzztime 30s
	$(GO) test ./pkg/event -run '^$$' -fuzz FuzzFastCheck -fuzztime 60s
	$(GO) test ./pkg/event -run '^$$' -fuzz FuzzAdmitFast -fuzztime 30s
	$(GO) test ./pkg/event -run '^$$' -fuzz FuzzDecodeAgreesWithJSONText -fuzztime 30s
	$(GO) test ./pkg/redact -run '^$$' -fuzz FuzzPrefilter -fuzztime 60s
	$(GO) test ./pkg/chain -run '^$$' -fuzz FuzzVerifier -fuzztime 60s
	$(GO) test ./pkg/chain -run '^$$' -fuzz FuzzWireParser -fuzztime 60s
	$(GO) test ./pkg/source/claudecode -run '^$$' -fuzz FuzzMap -fuzztime 60s
	$(GO) test ./pkg/source/cloudevents -run '^$$' -fuzz FuzzMap -fuzztime 60s
	$(GO) test ./pkg/sqlscope -run '^$$' -fuzz FuzzRewrite -fuzztime 60s
	TRAILKEEP_ORACLE_MUTANTS=20000 TRAILKEEP_ORACLE_SEED=$$RANDOM $(GO) test ./pkg/store/clickhouse -run TestSQLScopeDifferentialOracle -count=1 -v

clean: stop
	rm -rf bin .run bench.out
