#!/usr/bin/env bash
# Ingest memory under concurrency (BENCHMARKS.md, "Ingest memory"): at 8, 32, 128 and
# 512 connections, NDJSON batches of 500 and single events, each for 20 s after a 3 s
# warm-up; ingest is restarted per level so its peak RSS (VmHWM) is that level's.
# The broker, ingest and the load generator share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# A topic of its own: millions of load events on audit.events would sit in front of
# the chainer of `make run` (and of the next demo) for minutes.
export TRAILKEEP_EVENTS_TOPIC=${TRAILKEEP_EVENTS_TOPIC:-bench.ingest.events}
scripts/kafka.sh start
source .run/ingest/tokens.env 2>/dev/null || true
peak() { awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$(cat .run/ingest/pid)/status"; }
for mode in ${MODES:-batch single}; do
  for c in 8 32 128 512; do
    scripts/ingest-local.sh start >/dev/null
    source .run/ingest/tokens.env
    extra=(); [[ $mode == batch ]] && extra=(--batch 500)
    echo "== $mode, $c connections"
    bin/trailctl load --token "$REGISTRY_TOKEN" --mode "$mode" "${extra[@]}" --concurrency "$c" --duration 20s --warmup 3s
    echo "ingest peak RSS (VmHWM): $(peak)"
    echo
    scripts/ingest-local.sh stop >/dev/null
  done
done
