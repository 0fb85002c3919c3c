# Sourced by scripts/{ingest,chainer,query}-local.sh: what they share about running
# one binary in the background for `make run`, with its pid file in $dir and a log()
# function defined by the caller.

# svc_running: the recorded process is alive.
svc_running() { [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

# svc_wait LOGFILE CHECK...: poll CHECK for up to 20 s; fail with the log's tail if the
# process exits or never becomes ready.
svc_wait() {
  local logfile=$1; shift
  for _ in $(seq 1 100); do
    if "$@"; then return 0; fi
    if ! svc_running; then log "exited:"; tail -20 "$logfile" >&2; exit 1; fi
    sleep 0.2
  done
  log "not ready after 20s"; tail -20 "$logfile" >&2; exit 1
}

# svc_stop: SIGTERM, then wait up to 20 s for the process to drain and exit.
svc_stop() {
  [[ -f "$dir/pid" ]] || { log "not running"; return; }
  local pid; pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  rm -f "$dir/pid"; log "stopped"
}

# svc_require BINARY...: the binaries exist (make build, which make run and the bench
# targets do first). Starting never rebuilds: a restart runs what was running.
svc_require() {
  local b
  for b in "$@"; do
    [[ -x "$b" ]] || { log "$b missing: run make build first"; exit 1; }
  done
}

# svc_log_start LOGFILE: before a start, move the previous runs' lines to LOGFILE.prev
# (appended, never wiped: they are what explains a crash), so LOGFILE, which the
# readiness checks read, holds this run only.
svc_log_start() {
  if [[ -s "$1" ]]; then cat "$1" >>"$1.prev"; fi
  printf '=== %s start\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$1"
}
