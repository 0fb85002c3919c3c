#!/usr/bin/env bash
# make bench-peers: trailkeep and Tessera's POSIX log on the same machine, the same
# HTTP load generator (bench/peers, its own module), runs alternating. trailkeep is
# measured as `make run` starts it (trailkeep dev: embedded broker and ClickHouse
# engine in one process); set TRAILKEEP_PEERS_URL and TRAILKEEP_BENCH_TOKEN to
# measure a running stack instead (make run-stack). Prints one JSON line per run and
# the ratios; results go to bench-peers.out.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-$(scripts/ensure-go.sh)}
dur=${TRAILKEEP_PEERS_DURATION:-30s}
warm=${TRAILKEEP_PEERS_WARMUP:-5s}
rounds=${TRAILKEEP_PEERS_ROUNDS:-2}
work=$(mktemp -d)
dev_pid=""
cleanup() {
  if [[ -n $dev_pid ]]; then kill -- -"$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
(cd bench/peers && "$go" build -o "$work/peers" .)
url=${TRAILKEEP_PEERS_URL:-}
token=${TRAILKEEP_BENCH_TOKEN:-}
if [[ -z $url ]]; then
  "$go" build -o "$work/trailkeep" ./cmd/trailkeep
  # Ports of their own, so a `make run` left running is not measured by mistake.
  setsid "$work/trailkeep" dev --data-dir "$work/dev" --ingest-addr 127.0.0.1:18480 --query-addr 127.0.0.1:18481 > "$work/banner" 2> "$work/dev.log" &
  dev_pid=$!
  for _ in $(seq 1 600); do
    grep -q "trailkeep dev is running" "$work/banner" 2>/dev/null && break
    kill -0 "$dev_pid" 2>/dev/null || { echo "bench-peers: trailkeep dev exited:"; cat "$work/dev.log"; exit 1; }
    sleep 0.2
  done
  grep -q "trailkeep dev is running" "$work/banner" || { echo "bench-peers: trailkeep dev did not start"; exit 1; }
  url=http://127.0.0.1:18480
  token=$(sed -n 's/^REGISTRY_TOKEN=//p' "$work/dev/secrets/tokens.env")
fi
# drained waits until trailkeep dev has chained and stored what it acknowledged: its
# CPU falls under 10% of a core for a second. Otherwise the next run (Tessera's too)
# shares the cores with the previous run's backlog. A stack given by URL is not ours
# to watch; its runs follow each other as they are.
drained() {
  [[ -n $dev_pid ]] || return 0
  local start=$SECONDS hz a b
  hz=$(getconf CLK_TCK)
  while (( SECONDS - start < 600 )); do
    a=$(awk '{print $14 + $15}' "/proc/$dev_pid/stat")
    sleep 1
    b=$(awk '{print $14 + $15}' "/proc/$dev_pid/stat")
    if (( (b - a) * 10 < hz )); then
      echo "bench-peers: trailkeep dev drained in $(( SECONDS - start )) s" >&2
      return 0
    fi
  done
  echo "bench-peers: trailkeep dev still busy after 600 s" >&2
  exit 1
}
out=bench-peers.out
: > "$out"
for r in $(seq 1 "$rounds"); do
  "$work/peers" -system tessera -conns 256 -duration "$dur" -warmup "$warm" 2>/dev/null | tee -a "$out"
  "$work/peers" -system trailkeep -url "$url" -token "$token" -conns 256 -duration "$dur" -warmup "$warm" | tee -a "$out"
  drained
  "$work/peers" -system trailkeep -url "$url" -token "$token" -conns 8 -batch 500 -duration "$dur" -warmup "$warm" | tee -a "$out"
  drained
done
python3 - "$out" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def mean(sel):
    xs = [r["entries_per_s"] for r in runs if sel(r)]
    return sum(xs) / len(xs) if xs else 0
t = mean(lambda r: r["system"] == "tessera")
s = mean(lambda r: r["system"] == "trailkeep" and r["batch"] == 1)
b = mean(lambda r: r["system"] == "trailkeep" and r["batch"] > 1)
print(f"tessera 256 conns: {t:.0f}/s; trailkeep single events 256 conns: {s:.0f}/s ({s/t:.2f}x); trailkeep NDJSON 500 x 8 conns: {b:.0f}/s ({b/t:.2f}x)")
PY
