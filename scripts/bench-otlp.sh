#!/usr/bin/env bash
# The OTLP receiver figures in BENCHMARKS.md: Claude Code-shaped telemetry exports
# (OTLP/HTTP protobuf to /v1/logs) at the batch sizes its exporter sends — a handful of
# records every 5 s per session, up to a few hundred when a busy session flushes — with
# many sessions (connections) at once. Broker, ingest and load generator share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRAILKEEP_EVENTS_TOPIC=${TRAILKEEP_EVENTS_TOPIC:-bench.otlp.events}
scripts/kafka.sh start
scripts/ingest-local.sh start >/dev/null
source .run/ingest/tokens.env
for b in 1 10 50 200; do
  echo "== $b records per export, 32 connections"
  bin/trailctl load --token "$OTEL_TOKEN" --mode otlp --batch "$b" --concurrency 32 --duration 20s --warmup 3s
  echo
done
scripts/ingest-local.sh stop >/dev/null
