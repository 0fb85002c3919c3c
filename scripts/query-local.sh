#!/usr/bin/env bash
# Local query API for `make run`, reading scripts/clickhouse.sh's server and auditing
# every call into scripts/kafka.sh's broker.
#
#   scripts/query-local.sh start   create tokens once (.run/query,
#                                  git-ignored), start it on 127.0.0.1:8081
#   scripts/query-local.sh stop    SIGTERM
#
# .run/query/tokens.env holds the secrets:
#   AUDITOR_TOKEN (auditor of tenant acme, actor jane@acme.example)
#   ADMIN_TOKEN   (admin of every tenant, actor secops@acme.example)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/query"
addr=${TRAILKEEP_QUERY_ADDR:-127.0.0.1:8081}
log() { echo "query-local.sh: $*" >&2; }
source "$root/scripts/local-service.sh"

start() {
  mkdir -p "$dir" "$root/bin"
  svc_require "$root/bin/query" "$root/bin/trailctl"
  if svc_running; then log "reusing query pid $(cat "$dir/pid")"; return; fi
  if [[ ! -f "$dir/tokens.json" ]]; then
    local aud adm
    aud=$("$root/bin/trailctl" tokens query --name jane-auditor --role auditor --tenant acme --actor-id jane@acme.example --actor-email jane@acme.example)
    adm=$("$root/bin/trailctl" tokens query --name secops-admin --role admin --tenant '*' --actor-id secops@acme.example)
    python3 - "$dir" "$aud" "$adm" <<'PY'
import json, sys
d, aud, adm = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
json.dump({"tokens": [aud["entry"], adm["entry"]]}, open(d + "/tokens.json", "w"), indent=2)
with open(d + "/tokens.env", "w") as f:
    f.write("AUDITOR_TOKEN=%s\nADMIN_TOKEN=%s\n" % (aud["token"], adm["token"]))
PY
    chmod 600 "$dir/tokens.env"
  fi
  svc_log_start "$dir/query.log"
  TRAILKEEP_QUERY_ADDR=$addr TRAILKEEP_QUERY_TOKENS_FILE="$dir/tokens.json" \
  TRAILKEEP_CLICKHOUSE_ADDR=${TRAILKEEP_CLICKHOUSE_ADDR:-127.0.0.1:19000} \
    setsid nohup "$root/bin/query" >>"$dir/query.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  ready() { curl -sf "http://$addr/readyz" >/dev/null; }
  svc_wait "$dir/query.log" ready
  log "ready on http://$addr"
}

stop() { svc_stop; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
