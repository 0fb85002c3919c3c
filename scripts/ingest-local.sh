#!/usr/bin/env bash
# Local ingest for `make run` and the load benchmark, in front of scripts/kafka.sh's
# broker.
#
#   scripts/ingest-local.sh start   create tokens and an IP key once
#                                   (.run/ingest, git-ignored), start it on 127.0.0.1:8080
#   scripts/ingest-local.sh stop    SIGTERM (ingest drains in-flight requests)
#
# .run/ingest/tokens.env holds the secrets of the generated tokens:
#   REGISTRY_TOKEN (events:write, cloudevents:write; tenant acme-platform)
#   HOOK_TOKEN     (hooks:write; tenant acme, actor sarah@acme.example)
#   OTEL_TOKEN     (logs:write: OTLP /v1/logs; tenant acme, actor sarah@acme.example)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/ingest"
addr=${TRAILKEEP_INGEST_ADDR:-127.0.0.1:8080}
log() { echo "ingest-local.sh: $*" >&2; }
source "$root/scripts/local-service.sh"

start() {
  mkdir -p "$dir" "$root/bin"
  svc_require "$root/bin/ingest" "$root/bin/trailctl"
  if svc_running; then log "reusing ingest pid $(cat "$dir/pid")"; return; fi
  if ! grep -q '^OTEL_TOKEN=' "$dir/tokens.env" 2>/dev/null; then
    local reg hook otel
    reg=$("$root/bin/trailctl" tokens create --name registry --tenant acme-platform --source registry --scopes events:write,cloudevents:write)
    hook=$("$root/bin/trailctl" tokens create --name sarah-laptop --tenant acme --source claude_code --scopes hooks:write --actor-id sarah@acme.example --actor-email sarah@acme.example)
    otel=$("$root/bin/trailctl" tokens create --name sarah-telemetry --tenant acme --source claude_code --scopes logs:write --actor-id sarah@acme.example --actor-email sarah@acme.example)
    python3 - "$dir" "$reg" "$hook" "$otel" <<'PY'
import json, sys
d, reg, hook, otel = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
json.dump({"tokens": [reg["entry"], hook["entry"], otel["entry"]]}, open(d + "/tokens.json", "w"), indent=2)
with open(d + "/tokens.env", "w") as f:
    f.write("REGISTRY_TOKEN=%s\nHOOK_TOKEN=%s\nOTEL_TOKEN=%s\n" % (reg["token"], hook["token"], otel["token"]))
PY
    chmod 600 "$dir/tokens.env"
    head -c 32 /dev/urandom | base64 >"$dir/ip.key"
  fi
  svc_log_start "$dir/ingest.log"
  TRAILKEEP_INGEST_ADDR=$addr TRAILKEEP_INGEST_TOKENS_FILE="$dir/tokens.json" \
  TRAILKEEP_INGEST_IP_KEY_FILE="$dir/ip.key" \
    setsid nohup "$root/bin/ingest" >>"$dir/ingest.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  ready() { curl -sf "http://$addr/readyz" >/dev/null; }
  svc_wait "$dir/ingest.log" ready
  log "ready on http://$addr"
}

stop() { svc_stop; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
