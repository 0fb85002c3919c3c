#!/usr/bin/env bash
# Runs the part of trailkeep that exists today over the shared fixtures: starts the
# local Kafka broker and ingest and posts Claude Code hooks, canonical events and
# CloudEvents to it; then, offline, chains registry events into a signed partition log,
# verifies it with only the public key, proves one record and shows that an edited
# copy is caught and located.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TRAILCTL:-bin/trailctl}
fixtures=${TRAILKEEP_FIXTURES:-../shared/fixtures}
run=.run/demo
rm -rf "$run" && mkdir -p "$run"
origin=demo.trailkeep.local/audit.chained/0

step() { printf '\n== %s\n' "$*"; }

# --- Online: the real broker and ingest, fed with the shared fixtures -----------------
step "start the local Kafka broker (127.0.0.1:19092), ClickHouse (127.0.0.1:19000), ingest (127.0.0.1:8080), the chainer, and the exporter archiving to S3 Object Lock (versitygw, 127.0.0.1:17070)"
scripts/kafka.sh start
scripts/clickhouse.sh start
scripts/ingest-local.sh start
scripts/chainer-local.sh start
scripts/exporter-local.sh start
source .run/ingest/tokens.env
api=http://127.0.0.1:8080

step "Claude Code hooks: POST every payload of $fixtures/claude-code/session-basic.jsonl (answers are empty 200s)"
while IFS= read -r line; do
  [[ -z "$line" ]] && continue
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $HOOK_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$line" "$api/v1/hooks/claude-code")
  printf '%s ' "$code"
done < "$fixtures/claude-code/session-basic.jsonl"; echo

step "Claude Code telemetry: the same session's OpenTelemetry logs (who decided each tool call) to POST /v1/logs (OTLP/HTTP JSON)"
curl -s -X POST -H "Authorization: Bearer $OTEL_TOKEN" -H 'Content-Type: application/json' \
  --data-binary @"$fixtures/otlp/claude-code-logs.json" "$api/v1/logs"; echo

step "registry: canonical events as NDJSON, then a CloudEvents batch (per-item results)"
curl -s -X POST -H "Authorization: Bearer $REGISTRY_TOKEN" -H 'Content-Type: application/x-ndjson' \
  --data-binary @"$fixtures/registry/canonical-events.jsonl" "$api/v1/events"
curl -s -X POST -H "Authorization: Bearer $REGISTRY_TOKEN" -H 'Content-Type: application/cloudevents-batch+json' \
  --data-binary @"$fixtures/registry/cloudevents-batch.json" "$api/v1/cloudevents"

step "bad input is refused with the field and the rule"
curl -s -X POST -H "Authorization: Bearer $REGISTRY_TOKEN" -H 'Content-Type: application/json' \
  --data-binary '{"action": "skill.updated\u0027); DROP TABLE events;--"}' "$api/v1/events"
curl -s -X POST -H 'Content-Type: application/json' --data-binary '{}' "$api/v1/events"

step "ingest metrics"
curl -s "$api/metrics" | grep -E '^trailkeep_ingest_(events_accepted|events_rejected|kafka_ready)'
step "the chained log in ClickHouse (the chainer signs a checkpoint within 2 s)"
sleep 3
ch() { clickhouse-client --port 19000 --query "$1"; }
ch "SELECT chain_partition AS partition, count() AS events, min(seq), max(seq) FROM trailkeep.audit_events GROUP BY chain_partition ORDER BY chain_partition FORMAT PrettyCompact"
ch "SELECT chain_partition AS partition, tree_size, root_hash FROM trailkeep.audit_checkpoints ORDER BY chain_partition, tree_size FORMAT PrettyCompact"
export TRAILKEEP_CLICKHOUSE_ADDR=127.0.0.1:19000
step "search with trailctl: every tool call of the Claude Code session, then the registry's team changes"
"$bin" search 'tenant:acme event:tool.*' --limit 8
"$bin" search 'event:team.* OR event:skill.*' -o json > "$run/search.ndjson"
head -c 600 "$run/search.ndjson"; echo " ..."
step "who approved what: the approvals report joins hooks and telemetry per tool call"
"$bin" approvals --tenant acme
step "the query API (127.0.0.1:8081): an auditor of tenant acme searches, reads a proof and exports"
scripts/query-local.sh start
source .run/query/tokens.env
qapi=http://127.0.0.1:8081
curl -s -G -H "Authorization: Bearer $AUDITOR_TOKEN" --data-urlencode 'q=event:tool.*' --data-urlencode 'limit=2' -o "$run/api-search.json" "$qapi/v1/events"
head -c 500 "$run/api-search.json"; echo " ..."
id=$(curl -s -G -H "Authorization: Bearer $AUDITOR_TOKEN" --data-urlencode 'limit=1' "$qapi/v1/events" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"][0]["event"]["id"])')
for _ in $(seq 1 20); do  # the newest event may wait for the next checkpoint (every 2 s)
  code=$(curl -s -o "$run/api-proof.json" -w '%{http_code}' -H "Authorization: Bearer $AUDITOR_TOKEN" "$qapi/v1/events/$id/proof")
  [[ "$code" == 200 ]] && break; sleep 1
done
"$bin" verify-proof "$run/api-proof.json" --verifier-key .run/chainer/checkpoints.pub
curl -s -G -H "Authorization: Bearer $AUDITOR_TOKEN" --data-urlencode 'format=csv' -o "$run/api-export.csv" "$qapi/v1/export"
echo "exported $(($(wc -l < "$run/api-export.csv") - 1)) rows as CSV to $run/api-export.csv; the first:"
sed -n 2p "$run/api-export.csv" | cut -c1-220
echo "read-only SQL, and what the scope refuses:"
curl -s -H "Authorization: Bearer $AUDITOR_TOKEN" -d '{"sql":"SELECT action, count() AS n FROM audit_events GROUP BY action ORDER BY n DESC LIMIT 3"}' "$qapi/v1/sql"
curl -s -H "Authorization: Bearer $AUDITOR_TOKEN" -d '{"sql":"SELECT * FROM system.users"}' "$qapi/v1/sql"
echo "another tenant is refused:"
curl -s -H "Authorization: Bearer $AUDITOR_TOKEN" "$qapi/v1/events?tenant=acme-platform"
step "every one of those calls is itself in the audit log (chained like any event)"
sleep 4
"$bin" search 'event:audit_log.*' --limit 12

step "the WORM archive (s3://trailkeep-archive/local): verified OFFLINE with the public key alone"
sleep 3
AWS_ACCESS_KEY_ID=trailkeep AWS_SECRET_ACCESS_KEY=trailkeep-secret "$bin" verify --s3 s3://trailkeep-archive/local \
  --s3-endpoint http://127.0.0.1:17070 --s3-path-style --deployment local --pubkey .run/chainer/checkpoints.pub
curl -s http://127.0.0.1:8082/metrics | grep -E '^trailkeep_exporter_(sent_total|sink_up|last_acked_seq)' | head -8

cat <<TXT

Send a first event yourself and find it:
  source .run/ingest/tokens.env
  curl -s -X POST -H "Authorization: Bearer \$REGISTRY_TOKEN" -H 'Content-Type: application/json' \\
    -d '{"action":"skill.updated","actor":{"type":"user","id":"me@acme.example"},"resource":{"type":"skill","id":"my-skill"}}' \\
    http://127.0.0.1:8080/v1/events
  TRAILKEEP_CLICKHOUSE_ADDR=127.0.0.1:19000 $bin search 'resource:skill:my-skill actor:user:me@acme.example'
('$bin search --help' explains the filter language.) Query API tokens are in
.run/query/tokens.env. Kafka, ClickHouse, ingest, the chainer, the query API, the
exporter and versitygw keep running; 'make stop' ends them.
TXT

# --- Offline: chain, sign, verify and prove the registry events ------------------------

step "signing key (public key printed)"
"$bin" keys generate demo-checkpoints --dir "$run"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$run/ip.key"

step "canonicalise $fixtures/registry/canonical-events.jsonl for tenant acme-platform"
"$bin" event canonicalize --tenant acme-platform --tool registry --ip-key-file "$run/ip.key" \
  "$fixtures/registry/canonical-events.jsonl" > "$run/events.ndjson"
head -c 400 "$run/events.ndjson"; echo " ..."

step "chain them (checkpoint every 2 records)"
"$bin" chain append --origin "$origin" --partition 0 --signer-key "$run/demo-checkpoints.key" \
  --records "$run/records.ndjson" --checkpoints "$run/checkpoints.ndjson" --checkpoint-every 2 "$run/events.ndjson"
echo "first checkpoint (C2SP signed note):"; head -n1 "$run/checkpoints.ndjson" | cut -c1-220

step "verify with only the public key"
"$bin" verify --origin "$origin" --partition 0 --verifier-key "$run/demo-checkpoints.pub" \
  --records "$run/records.ndjson" --checkpoints "$run/checkpoints.ndjson"

step "prove record seq 1 and check the proof"
"$bin" prove --seq 1 --origin "$origin" --partition 0 --verifier-key "$run/demo-checkpoints.pub" \
  --records "$run/records.ndjson" --checkpoints "$run/checkpoints.ndjson" > "$run/proof-1.json"
"$bin" verify-proof "$run/proof-1.json" --origin "$origin" --verifier-key "$run/demo-checkpoints.pub"

step "edit one record (team.role_changed: writer -> admin) and verify again: must FAIL"
sed '2s/"new_role":"writer"/"new_role":"admin"/' "$run/records.ndjson" > "$run/records-tampered.ndjson"
if "$bin" verify --origin "$origin" --partition 0 --verifier-key "$run/demo-checkpoints.pub" \
  --records "$run/records-tampered.ndjson" --checkpoints "$run/checkpoints.ndjson"; then
  echo "tampering was NOT detected" >&2; exit 1
fi
echo "tampering detected, as it must be. Files are in $run/"
