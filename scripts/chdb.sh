#!/usr/bin/env bash
# Fetches libchdb.so (a ClickHouse 26.x engine as a shared library) from the npm package
# @chdb/lib-linux-x64-gnu into .run/chdb, once, and prints its path. Tests load it in
# process (internal/chdb) to run the modern DDL and the store's queries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/chdb"
version=${TRAILKEEP_CHDB_VERSION:-26.5.3}
lib="$dir/$version/libchdb.so"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9   # parallel test packages: one download
if [[ -f "$lib" ]]; then echo "$lib"; exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
  sudo=""; [[ $(id -u) != 0 ]] && sudo=sudo
  echo "chdb.sh: installing npm (apt)" >&2
  $sudo apt-get update -qq && $sudo apt-get install -y -qq npm >/dev/null
fi
mkdir -p "$dir/$version"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "chdb.sh: fetching @chdb/lib-linux-x64-gnu@$version (npm)" >&2
(cd "$tmp" && npm pack --silent "@chdb/lib-linux-x64-gnu@$version" >/dev/null)
tar xzf "$tmp"/chdb-lib-linux-x64-gnu-*.tgz -C "$tmp"
mv "$tmp/package/libchdb.so" "$lib.partial"
mv "$lib.partial" "$lib"
echo "$lib"
