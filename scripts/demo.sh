#!/usr/bin/env bash
# make run: starts `trailkeep dev` (the whole pipeline in one process on an embedded
# Kafka broker and an in-process ClickHouse engine, data in .run/dev), feeds it the
# shared fixtures, searches, proves an event, verifies the archive offline with the
# public key alone, and shows an edited archive copy caught. trailkeep dev keeps
# running afterwards; `make stop` ends it. The distributed stack is `make run-stack`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
fixtures=${TRAILKEEP_FIXTURES:-../shared/fixtures}
data=.run/dev
run=.run/demo
mkdir -p "$run" .run
step() { printf '\n== %s\n' "$*"; }
# A fresh Debian may lack the demo's HTTP client and JSON reader.
missing=(); for c in curl python3; do command -v "$c" >/dev/null || missing+=("$c"); done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) != 0 ]] && sudo=sudo
  echo "demo: installing ${missing[*]} (apt)"; $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ -f .run/dev.pid ]] && kill -0 "$(cat .run/dev.pid)" 2>/dev/null; then
  step "stopping the trailkeep dev left by the last run"
  kill "$(cat .run/dev.pid)"; while kill -0 "$(cat .run/dev.pid)" 2>/dev/null; do sleep 0.2; done
fi
rm -rf "$data" "$run" && mkdir -p "$run"

step "start trailkeep dev (data in $data; the first start fetches the ClickHouse engine once)"
start=${EPOCHREALTIME/./}
# setsid: its own process group, so `make stop` ends exactly what this started.
setsid "$bin/trailkeep" dev --data-dir "$data" > "$run/banner.txt" 2> "$run/dev.log" &
echo $! > .run/dev.pid
for _ in $(seq 1 600); do
  grep -q "trailkeep dev is running" "$run/banner.txt" 2>/dev/null && break
  kill -0 "$(cat .run/dev.pid)" 2>/dev/null || { echo "trailkeep dev exited:"; cat "$run/dev.log"; exit 1; }
  sleep 0.2
done
grep -q "trailkeep dev is running" "$run/banner.txt" || { echo "trailkeep dev did not start in 120 s:"; tail -20 "$run/dev.log"; exit 1; }
elapsed() { local us=$(( ${EPOCHREALTIME/./} - start )); printf '%d.%01d' $((us / 1000000)) $((us % 1000000 / 100000)); }
echo "ready in $(elapsed) s"
cat "$run/banner.txt"
set -a; source "$data/secrets/tokens.env"; set +a
api=http://127.0.0.1:8080 qapi=http://127.0.0.1:8081
export TRAILKEEP_QUERY_TOKEN=$ADMIN_TOKEN

step "Claude Code hooks: POST every payload of $fixtures/claude-code/session-basic.jsonl (answers are empty 200s)"
while IFS= read -r line; do
  [[ -z "$line" ]] && continue
  printf '%s ' "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $HOOK_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$line" "$api/v1/hooks/claude-code")"
done < "$fixtures/claude-code/session-basic.jsonl"; echo

step "Claude Code telemetry (OTLP/HTTP JSON), registry events (NDJSON) and a CloudEvents batch"
curl -s -X POST -H "Authorization: Bearer $OTEL_TOKEN" -H 'Content-Type: application/json' \
  --data-binary @"$fixtures/otlp/claude-code-logs.json" "$api/v1/logs"; echo
# The fixtures name tenant acme-platform; the dev tokens belong to one tenant.
sed 's/"tenant": *"acme-platform"/"tenant": "acme"/' "$fixtures/registry/canonical-events.jsonl" |
  curl -s -X POST -H "Authorization: Bearer $REGISTRY_TOKEN" -H 'Content-Type: application/x-ndjson' --data-binary @- "$api/v1/events"; echo
curl -s -X POST -H "Authorization: Bearer $REGISTRY_TOKEN" -H 'Content-Type: application/cloudevents-batch+json' \
  --data-binary @"$fixtures/registry/cloudevents-batch.json" "$api/v1/cloudevents"; echo

step "bad input is refused with the field and the rule"
curl -s -X POST -H "Authorization: Bearer $REGISTRY_TOKEN" -H 'Content-Type: application/json' \
  --data-binary '{"action": "skill.updated\u0027); DROP TABLE events;--"}' "$api/v1/events"; echo

step "search through the query API: the session's tool calls, then the registry's changes"
for _ in $(seq 1 50); do  # chained, signed and stored within a few seconds
  n=$("$bin/trailctl" search --api "$qapi" 'event:tool.*' -o json 2>/dev/null | wc -l)
  [[ "$n" -ge 3 ]] && break; sleep 0.2
done
"$bin/trailctl" search --api "$qapi" 'tenant:acme event:tool.*' --limit 8
"$bin/trailctl" search --api "$qapi" 'event:team.* OR event:skill.*' --limit 5

step "read-only SQL, scoped to the token"
curl -s -H "Authorization: Bearer $AUDITOR_TOKEN" -d '{"sql":"SELECT action, count() AS n FROM audit_events GROUP BY action ORDER BY n DESC LIMIT 3"}' "$qapi/v1/sql"; echo

step "prove one event: inclusion in a signed checkpoint, checked against the public key"
id=$("$bin/trailctl" search --api "$qapi" 'event:tool.*' --limit 1 -o json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"]["id"])')
for _ in $(seq 1 30); do  # the newest event waits for the next checkpoint
  "$bin/trailctl" prove --api "$qapi" "$id" > "$run/proof.json" 2>/dev/null && break; sleep 1
done
"$bin/trailctl" verify-proof "$run/proof.json" --verifier-key "$data/secrets/checkpoints.pub"

step "the archive ($data/archive), verified OFFLINE with the public key alone"
for _ in $(seq 1 30); do  # segments roll within 2 s
  "$bin/trailctl" verify --s3 "file://$PWD/$data/archive" --deployment dev --pubkey "$data/secrets/checkpoints.pub" > "$run/verify.txt" 2>&1 && break; sleep 1
done
cat "$run/verify.txt"

step "edit one archived record in a copy (a tool's result) and verify again: must FAIL"
cp -r "$data/archive" "$run/archive-tampered" && chmod -R u+w "$run/archive-tampered"
seg=$(find "$run/archive-tampered" -path '*tenant=acme*' -name '*.ndjson.gz' | sort | head -1)
gunzip -c "$seg" | sed '1s/"status":"success"/"status":"failure"/' | gzip > "$seg.new" && mv "$seg.new" "$seg"
if "$bin/trailctl" verify --s3 "file://$PWD/$run/archive-tampered" --deployment dev --pubkey "$data/secrets/checkpoints.pub"; then
  echo "tampering was NOT detected" >&2; exit 1
fi
echo "tampering detected and located, as it must be."
step "the web console: search, event detail and proofs checked in your browser"
# What the console's sign-in does: the token must read through the query API.
curl -fsS -o /dev/null -D "$run/console.headers" "$qapi/ui/" && grep -qi '^content-security-policy:' "$run/console.headers" ||
  { echo "the console is not served at $qapi/ui/" >&2; exit 1; }
curl -fsS -o /dev/null -H "Authorization: Bearer $AUDITOR_TOKEN" -H 'X-Trailkeep-Console: make-run' "$qapi/v1/me" ||
  { echo "the auditor token does not sign in" >&2; exit 1; }
printf '  open   %s/ui/\n  token  %s   (auditor of tenant acme; kept in the tab only)\n  key    %s   (pin it at sign-in)\n' \
  "$qapi" "$AUDITOR_TOKEN" "$(cat "$data/secrets/checkpoints.pub")"

printf '\nmake run took %s s. trailkeep dev keeps running (pid %s, log %s); make stop ends it.\n' \
  "$(elapsed)" "$(cat .run/dev.pid)" "$run/dev.log"
