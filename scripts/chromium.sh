#!/usr/bin/env bash
# Debian's Chromium for the web console's browser tests, installed with apt if
# missing. Prints the binary's path. The tests start and stop their own headless
# instance; this script only makes sure there is one to start.
set -euo pipefail
log() { echo "chromium.sh: $*" >&2; }
bin=/usr/bin/chromium
if [[ ! -x $bin ]]; then
  sudo=""; [[ $(id -u) != 0 ]] && sudo=sudo
  log "installing chromium (apt)"
  $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
[[ -x $bin ]] || { log "no $bin after installing the chromium package"; exit 1; }
echo "$bin"
