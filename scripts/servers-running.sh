#!/usr/bin/env bash
# Prints the local test servers (kafka, clickhouse, versitygw) that are running, one
# per line. make test and make test-unit call it before and after the tests to stop
# (or flag) only what the tests started. A server counts as running when its status
# answers; a busy one may miss a single probe, so each is asked three times before
# it is taken as down: a false "down" before the tests would blame them for it.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for s in kafka clickhouse versitygw; do
  for try in 1 2 3; do
    if "$root/scripts/$s.sh" status >/dev/null 2>&1; then echo "$s"; break; fi
    [[ $try == 3 ]] || sleep 1
  done
done
