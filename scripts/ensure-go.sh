#!/usr/bin/env bash
# Prints the path of a Go toolchain new enough for go.mod, installing one if
# needed. Debian's golang-go is too old, and go.dev/dl is not reachable from
# our machines, so the toolchain comes from the Go module proxy
# (golang.org/toolchain, the same zip `GOTOOLCHAIN=auto` uses) into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(awk '/^go /{print $2; exit}' go.mod)
newer() { [ "$(printf '%s\n%s\n' "$want" "$1" | sort -V | head -n1)" = "$want" ]; }

for cand in "$(command -v go || true)" /usr/local/go/bin/go "$PWD/.tools/go/bin/go"; do
  if [ -n "$cand" ] && [ -x "$cand" ]; then
    have=$("$cand" env GOVERSION 2>/dev/null | sed 's/^go//')
    if [ -n "$have" ] && newer "$have"; then echo "$cand"; exit 0; fi
  fi
done

echo "ensure-go: installing Go $want from the module proxy into .tools/go" >&2
if ! command -v curl >/dev/null || ! command -v unzip >/dev/null; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl unzip ca-certificates >&2
fi
arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64) arch=arm64;; esac
proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%,*}
tmp=$(mktemp -d)
curl -fsSL "$proxy/golang.org/toolchain/@v/v0.0.1-go$want.linux-$arch.zip" -o "$tmp/go.zip" >&2
unzip -q "$tmp/go.zip" -d "$tmp" >&2
rm -rf .tools/go && mkdir -p .tools
mv "$tmp/golang.org/toolchain@v0.0.1-go$want.linux-$arch" .tools/go
chmod +x .tools/go/bin/* .tools/go/pkg/tool/*/* 2>/dev/null || true
rm -rf "$tmp"
echo "$PWD/.tools/go/bin/go"
