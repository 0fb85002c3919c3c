#!/usr/bin/env bash
# Runs the part of trailkeep that exists today over the shared fixtures,
# offline: canonicalise registry events as ingest would, chain them into a
# signed partition log, verify it with only the public key, prove one record,
# then show that an edited copy is caught and located.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TRAILCTL:-bin/trailctl}
fixtures=${TRAILKEEP_FIXTURES:-../shared/fixtures}
run=.run/demo
rm -rf "$run" && mkdir -p "$run"
origin=demo.trailkeep.local/audit.chained/0

step() { printf '\n== %s\n' "$*"; }

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
"$bin" prove check "$run/proof-1.json" --origin "$origin" --verifier-key "$run/demo-checkpoints.pub"

step "edit one record (team.role_changed: writer -> admin) and verify again: must FAIL"
sed '2s/"new_role":"writer"/"new_role":"admin"/' "$run/records.ndjson" > "$run/records-tampered.ndjson"
if "$bin" verify --origin "$origin" --partition 0 --verifier-key "$run/demo-checkpoints.pub" \
  --records "$run/records-tampered.ndjson" --checkpoints "$run/checkpoints.ndjson"; then
  echo "tampering was NOT detected" >&2; exit 1
fi
echo "tampering detected, as it must be. Files are in $run/"
