#!/usr/bin/env bash
# The ingest figures in BENCHMARKS.md: the local broker and ingest on this machine, the
# load generator beside them (all three share the 2 cores, as the targets state).
set -euo pipefail
cd "$(dirname "$0")/.."
# A topic of its own: millions of load events on audit.events would sit in front of
# the chainer of `make run` (and of the next demo) for minutes.
export TRAILKEEP_EVENTS_TOPIC=${TRAILKEEP_EVENTS_TOPIC:-bench.ingest.events}
scripts/kafka.sh start
scripts/ingest-local.sh start
source .run/ingest/tokens.env
load() { bin/trailctl load --duration 20s --warmup 3s "$@"; echo; }
echo "== maximum rate"
load --token "$REGISTRY_TOKEN" --mode batch --batch 500 --concurrency 8 | tee .run/bench-batch.txt
load --token "$REGISTRY_TOKEN" --mode single --concurrency 32 | tee .run/bench-single.txt
load --token "$HOOK_TOKEN" --mode hooks --concurrency 32
# Half the measured maximum, for the p99 goal.
half() { awk -v f="$2" '/^requests:/ {gsub(/[(\/s)]/,"",$3); print $3/f}' "$1"; }
echo "== half the maximum rate"
load --token "$REGISTRY_TOKEN" --mode batch --batch 500 --concurrency 8 --rate "$(half .run/bench-batch.txt 2)"
load --token "$REGISTRY_TOKEN" --mode single --concurrency 32 --rate "$(half .run/bench-single.txt 2)"
