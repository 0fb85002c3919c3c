#!/usr/bin/env bash
# Local chainer + ClickHouse writer (cmd/chainer) for `make run`, in front of
# scripts/kafka.sh's broker and scripts/clickhouse.sh's server.
#
#   scripts/chainer-local.sh start   create a checkpoint signing key once (.run/chainer),
#                                    start bin/chainer, wait until it is chaining
#   scripts/chainer-local.sh stop    SIGTERM
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/chainer"
log() { echo "chainer-local.sh: $*" >&2; }
source "$root/scripts/local-service.sh"

start() {
  mkdir -p "$dir" "$root/bin"
  svc_require "$root/bin/chainer" "$root/bin/trailctl"
  if svc_running; then log "reusing chainer pid $(cat "$dir/pid")"; return; fi
  if [[ ! -f "$dir/checkpoints.key" ]]; then
    "$root/bin/trailctl" keys generate checkpoints --dir "$dir" >/dev/null
  fi
  svc_log_start "$dir/chainer.log"
  TRAILKEEP_DEPLOYMENT=local TRAILKEEP_SIGNER_KEY_FILE="$dir/checkpoints.key" \
  TRAILKEEP_CHAINER_TRANSACTIONAL_ID=local-chainer-0 TRAILKEEP_CLICKHOUSE_ADDR=127.0.0.1:19000 \
  TRAILKEEP_CHECKPOINT_INTERVAL=2s \
    setsid nohup "$root/bin/chainer" >>"$dir/chainer.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  ready() { grep -q '"msg":"chaining"' "$dir/chainer.log" && grep -q 'writing to ClickHouse' "$dir/chainer.log"; }
  svc_wait "$dir/chainer.log" ready
  log "chaining; public key $(cat "$dir/checkpoints.pub")"
}

stop() { svc_stop; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
