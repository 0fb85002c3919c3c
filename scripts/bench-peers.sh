#!/usr/bin/env bash
# make bench-peers: trailkeep and Tessera's POSIX log on the same machine, the same
# HTTP load generator (bench/peers, its own module), runs alternating. trailkeep is
# measured as `make run` starts it (trailkeep dev: embedded broker and ClickHouse
# engine in one process); TRAILKEEP_PEERS_STACK=1 measures the distributed stack
# instead (as make run-stack starts it: the local Kafka, ClickHouse server and
# versitygw, one process per service; what this script started it stops), and
# TRAILKEEP_PEERS_URL with TRAILKEEP_BENCH_TOKEN a stack already running elsewhere.
# Prints one JSON line per run and the ratios; results go to bench-peers.out, the CPU
# each process used in each run to bench-peers.cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-$(scripts/ensure-go.sh)}
dur=${TRAILKEEP_PEERS_DURATION:-30s}
warm=${TRAILKEEP_PEERS_WARMUP:-5s}
rounds=${TRAILKEEP_PEERS_ROUNDS:-2}
work=$(mktemp -d)
dev_pid=""
stack_started=""  # the stack's parts this script started, stopped in reverse on exit
servers_before=""
cleanup() {
  if [[ -n $dev_pid ]]; then kill -- -"$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  local part
  for part in $stack_started; do scripts/$part-local.sh stop >/dev/null 2>&1 || true; done
  if [[ -n $stack_started ]]; then
    for part in versitygw clickhouse kafka; do
      case " $servers_before " in *" $part "*) ;; *) scripts/$part.sh stop >/dev/null 2>&1 || true ;; esac
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# start_stack starts the distributed stack with the scripts make run-stack uses;
# services already running (svc_running, as those scripts judge it) are measured as
# they are and left running.
source scripts/local-service.sh
start_stack() {
  GO="$go" make -s build
  servers_before=$(scripts/servers-running.sh | tr '\n' ' ')
  local part
  for part in exporter chainer ingest; do
    dir=.run/$part svc_running || stack_started="$stack_started $part"
  done
  scripts/kafka.sh start
  scripts/clickhouse.sh start
  scripts/ingest-local.sh start
  scripts/chainer-local.sh start
  scripts/exporter-local.sh start
  url=http://127.0.0.1:8080
  token=$(sed -n 's/^REGISTRY_TOKEN=//p' .run/ingest/tokens.env)
  # The ClickHouse writer's and the archive's consumer lag (drained waits for both).
  lag_urls="http://127.0.0.1:8083/metrics http://127.0.0.1:8082/metrics"
}
lag_urls=""
(cd bench/peers && "$go" build -o "$work/peers" .)
url=${TRAILKEEP_PEERS_URL:-}
token=${TRAILKEEP_BENCH_TOKEN:-}
if [[ -z $url && -n ${TRAILKEEP_PEERS_STACK:-} ]]; then
  start_stack
elif [[ -z $url ]]; then
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
# drained waits until trailkeep has chained and stored what it acknowledged: the CPU
# of trailkeep dev (or, for a stack, of the whole machine: its broker, ClickHouse
# server and services) falls under 10% of a core for a second, and for a stack this
# script started, no consumer of the writer or the archive lags (a sink waiting on
# its own timers is idle but not done). Otherwise the next run (Tessera's too)
# shares the cores with the previous run's backlog.
busy_ticks() {
  if [[ -n $dev_pid ]]; then awk '{print $14 + $15}' "/proc/$dev_pid/stat"
  else machine_ticks; fi
}
# machine_ticks is the ticks all CPUs have spent busy (user, nice, system, irq,
# softirq, steal; not idle or iowait).
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
drained() {
  local start=$SECONDS hz a b
  hz=$(getconf CLK_TCK)
  while (( SECONDS - start < 600 )); do
    a=$(busy_ticks); sleep 1; b=$(busy_ticks)
    if (( (b - a) * 10 < hz )) && ! lagging; then
      echo "bench-peers: trailkeep drained in $(( SECONDS - start )) s" >&2
      return 0
    fi
  done
  echo "bench-peers: trailkeep still busy after 600 s" >&2
  exit 1
}
# lagging reports whether a consumer of lag_urls is more than a transaction marker
# behind its partition's end (trailkeep_exporter_lag_records, the writer's and each
# sink's); an endpoint that does not answer counts as lagging.
lagging() {
  local u
  for u in $lag_urls; do
    curl -sf "$u" | awk '/^trailkeep_exporter_lag_records/ && $2 > 1 {lag = 1} END {exit !lag}' && return 0
    curl -sf "$u" >/dev/null || return 0
  done
  return 1
}
# cpu_by_process prints each process's CPU so far (user + system ticks, all its
# threads) as "ticks comm", summed by command name; kernel threads (children of
# kthreadd, pid 2) are left out, their names change as they work. The machine's total,
# kernel included, is the line "ticks machine".
cpu_by_process() {
  local f
  for f in /proc/[0-9]*/stat; do
    awk '{c = $0; sub(/^[^(]*\(/, "", c); sub(/\)[^)]*$/, "", c); gsub(/ /, "_", c)
      n = split($0, a, ") "); split(a[n], f, " "); if (f[2] != 2 && $1 != 2) print f[12] + f[13], c}' "$f" 2>/dev/null || true
  done | awk '{t[$2] += $1} END {for (c in t) print t[c], c}'
  echo "$(machine_ticks) machine"
}
# peers_failed shows the load generator's log (in $work, which cleanup removes) and
# stops.
peers_failed() {
  echo "bench-peers: the load generator failed:" >&2
  cat "$work/peers.log" >&2
  exit 1
}
# measured LABEL RUN-ARGS...: one load generator run and, for trailkeep, the drain after it;
# then the CPU seconds each process used in that time, largest first (to stderr and
# bench-peers.cpu): which process had the cores. The load generator (with Tessera's
# log, which it runs in-process) has exited by then, so bash's `time` counts it.
measured() {
  local label=$1 before after TIMEFORMAT='%U %S'
  shift
  before=$(cpu_by_process)
  { time "$work/peers" "$@" 2>>"$work/peers.log" | tee -a "$out"; } 2>"$work/time" || peers_failed
  if [[ " $* " == *" trailkeep "* ]]; then drained; fi
  after=$(cpu_by_process)
  { printf 'cpu seconds by process (%s):' "$label"
    { awk -v hz="$(getconf CLK_TCK)" 'NR == FNR {b[$2] = $1; next} $1 - b[$2] >= hz / 10 {printf "%.1f %s\n", ($1 - b[$2]) / hz, $2}' \
        <(echo "$before") <(echo "$after")
      awk '{printf "%.1f peers\n", $1 + $2}' "$work/time"
    } | sort -rn | awk '{printf " %s=%s", $2, $1} END {print ""}'
  } | tee -a bench-peers.cpu >&2
}
out=bench-peers.out
: > "$out"; : > bench-peers.cpu
if [[ -n $stack_started ]]; then
  # What the store already holds changes what each insert and merge costs (a
  # partition scanned per checkpoint once made a 39M-row store measure slower):
  # say it, so a run is read with its store.
  held=$(clickhouse-client --port "${TRAILKEEP_CLICKHOUSE_PORT:-19000}" -q "SELECT count() FROM trailkeep.audit_events" 2>/dev/null || echo "an unknown number of")
  echo "bench-peers: the stack's store holds $held events before the runs" | tee -a bench-peers.cpu >&2
  # A broker JVM just started is still compiling its hot paths (the first run
  # measured it at half its later rate): 20 s of load first, not recorded.
  echo "bench-peers: warming the stack up for 20 s" >&2
  "$work/peers" -system trailkeep -url "$url" -token "$token" -conns 256 -duration 20s -warmup 1s >/dev/null 2>>"$work/peers.log" || peers_failed
  drained
fi
for r in $(seq 1 "$rounds"); do
  measured "tessera, 256 connections" -system tessera -conns 256 -duration "$dur" -warmup "$warm"
  measured "trailkeep, 256 connections" -system trailkeep -url "$url" -token "$token" -conns 256 -duration "$dur" -warmup "$warm"
  measured "trailkeep, 8 connections of NDJSON batches of 500" -system trailkeep -url "$url" -token "$token" -conns 8 -batch 500 -duration "$dur" -warmup "$warm"
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
# A request that failed (refused, 503, timed out) makes its run's rate no measure of
# the system: say so and fail, rather than print a ratio that reads as a result.
failed = [r for r in runs if r.get("failures")]
for r in failed:
    print(f"bench-peers: {r['system']} with {r['conns']} connections, batch {r['batch']}: {r['failures']} failed requests", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
