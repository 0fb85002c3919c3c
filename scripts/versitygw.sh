#!/usr/bin/env bash
# Local S3-compatible server with versioning and Object Lock, for the WORM archive's
# tests and `make run`: Versity Gateway v1.8.0 over a POSIX directory.
#
#   scripts/versitygw.sh start    install (go install, into .tools/bin) and start it on
#                                 $TRAILKEEP_S3_ADDR (default 127.0.0.1:17070), data in
#                                 $TRAILKEEP_S3_DIR (default .run/versitygw)
#   scripts/versitygw.sh stop     stop it
#   scripts/versitygw.sh status
#
# Credentials: TRAILKEEP_S3_ACCESS_KEY / TRAILKEEP_S3_SECRET_KEY (defaults trailkeep /
# trailkeep-secret). Metadata goes to a sidecar directory, so no xattr support is needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
addr=${TRAILKEEP_S3_ADDR:-127.0.0.1:17070}
dir=${TRAILKEEP_S3_DIR:-$root/.run/versitygw}
bin="$root/.tools/bin/versitygw"
log() { echo "versitygw.sh: $*" >&2; }
source "$root/scripts/local-service.sh"

install() {
  [[ -x "$bin" ]] && return
  local go; go=$("$root/scripts/ensure-go.sh")
  log "installing versitygw v1.8.0 into .tools/bin"
  mkdir -p "$root/.tools/bin"
  GOBIN="$root/.tools/bin" GOFLAGS= "$go" install github.com/versity/versitygw/cmd/versitygw@v1.8.0 >&2
}

# Ready when our own process is alive and answering (not some other server on the port).
ready() { svc_running && curl -s -o /dev/null "http://$addr/"; }

start() {
  mkdir -p "$dir/data" "$dir/versions" "$dir/sidecar"
  # Test binaries start it concurrently: one installs and starts, the others wait.
  exec 9>"$dir.lock"
  flock 9
  install
  if svc_running; then log "reusing versitygw pid $(cat "$dir/pid")"; return; fi
  ROOT_ACCESS_KEY=${TRAILKEEP_S3_ACCESS_KEY:-trailkeep} ROOT_SECRET_KEY=${TRAILKEEP_S3_SECRET_KEY:-trailkeep-secret} \
    setsid nohup "$bin" --port "$addr" posix --versioning-dir "$dir/versions" --sidecar "$dir/sidecar" "$dir/data" \
    >"$dir/versitygw.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/pid"
  svc_wait "$dir/versitygw.log" ready
  log "ready on http://$addr"
}

case "${1:-}" in
  start) start ;;
  stop) svc_stop ;;
  status) if svc_running; then echo "running (pid $(cat "$dir/pid"))"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
