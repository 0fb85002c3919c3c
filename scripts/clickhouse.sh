#!/usr/bin/env bash
# Local ClickHouse server for tests and `make run`: the Debian package (18.16 on these
# machines), installed with apt if missing, run from the packaged configuration with
# its paths and ports moved into .run/clickhouse (git-ignored).
#
#   scripts/clickhouse.sh start    start on 127.0.0.1:19000 (native protocol) and wait
#   scripts/clickhouse.sh stop
#   scripts/clickhouse.sh status
#
# TRAILKEEP_CLICKHOUSE_PORT (19000) and TRAILKEEP_CLICKHOUSE_DIR override port and dir.
# TRAILKEEP_CLICKHOUSE_SECURE=1 also serves the native protocol over TLS on port+3 with a
# CA and server certificate generated into $dir/tls (ca.pem), for the connection tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="${TRAILKEEP_CLICKHOUSE_DIR:-$root/.run/clickhouse}"
port=${TRAILKEEP_CLICKHOUSE_PORT:-19000}
pidfile="$dir/server.pid"
log() { echo "clickhouse.sh: $*" >&2; }

install() {
  if [[ -x /usr/sbin/clickhouse-server || -x /usr/bin/clickhouse-server ]]; then return; fi
  local sudo=""; [[ $(id -u) != 0 ]] && sudo=sudo
  log "installing clickhouse-server (apt)"
  # policy-rc.d may refuse to start the packaged service; that is fine, we run our own.
  $sudo apt-get update -qq && $sudo apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
}

binary() { command -v clickhouse-server || echo /usr/sbin/clickhouse-server; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
alive() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

config() {
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/logs"
  sed -e "s|/var/lib/clickhouse/tmp/|$dir/tmp/|; s|/var/lib/clickhouse/user_files/|$dir/user_files/|" \
      -e "s|/var/lib/clickhouse/format_schemas/|$dir/format_schemas/|; s|/var/lib/clickhouse/|$dir/data/|" \
      -e "s|/var/log/clickhouse-server/|$dir/logs/|g" \
      -e "s|<tcp_port>9000</tcp_port>|<tcp_port>$port</tcp_port>|" \
      -e "s|<http_port>8123</http_port>|<http_port>$((port + 1))</http_port>|" \
      -e "s|<interserver_http_port>9009</interserver_http_port>|<interserver_http_port>$((port + 2))</interserver_http_port>|" \
      -e "s|<listen_host>::1</listen_host>||" \
      -e "s|<level>trace</level>|<level>warning</level>|" \
      /etc/clickhouse-server/config.xml >"$dir/config.xml"
  cp /etc/clickhouse-server/users.xml "$dir/users.xml"
  if [[ "${TRAILKEEP_CLICKHOUSE_SECURE:-0}" == 1 ]]; then secure_config; fi
}

# secure_config enables tcp_port_secure with a generated certificate signed by a
# generated CA.
secure_config() {
  local t="$dir/tls"
  if [[ ! -f "$t/.complete" ]]; then
    rm -rf "$t" && mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=trailkeep-test-ca" \
      -keyout "$t/ca-key.pem" -out "$t/ca.pem" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$t/san.ext"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$t/server.key" -out "$t/server.csr" >/dev/null 2>&1
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial -days 3650 \
      -extfile "$t/san.ext" -out "$t/server.crt" >/dev/null 2>&1
    touch "$t/.complete"
  fi
  # The packaged tcp_port_secure is inside a comment: add one after tcp_port instead.
  sed -i -e "s|<tcp_port>$port</tcp_port>|<tcp_port>$port</tcp_port><tcp_port_secure>$((port + 3))</tcp_port_secure>|" \
      -e "s|/etc/clickhouse-server/server.crt|$t/server.crt|; s|/etc/clickhouse-server/server.key|$t/server.key|" \
      -e "s|<dhParamsFile>.*</dhParamsFile>||" "$dir/config.xml"
}

start() {
  # Test packages run in parallel and each may call start: one at a time per directory.
  mkdir -p "$(dirname "$dir")"
  exec 9>"$dir.lock"
  flock 9
  if alive && answers; then log "reusing server pid $(cat "$pidfile") on 127.0.0.1:$port"; return; fi
  if answers; then
    if [[ "${TRAILKEEP_CLICKHOUSE_EXCLUSIVE:-0}" == 1 ]]; then
      log "127.0.0.1:$port is served by a process not started from $dir, and this server must be its own (TRAILKEEP_CLICKHOUSE_EXCLUSIVE)"
      exit 1
    fi
    log "127.0.0.1:$port is served by a process not started from $dir; using it"; return
  fi
  install
  config
  log "starting ClickHouse on 127.0.0.1:$port (data in $dir)"
  cd "$dir"
  # setsid: outlive the caller; 9>&-: do not inherit the start lock, or the next start
  # would wait for as long as the server runs.
  setsid nohup "$(binary)" --config-file="$dir/config.xml" --pid-file="$pidfile" \
     >"$dir/logs/stdout.log" 2>&1 </dev/null 9>&- &
  # The server does not write --pid-file when it runs in the foreground, and stop
  # relies on it: record the pid here (setsid and nohup exec, so $! is the server).
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if answers; then log "server ready"; return; fi
    sleep 0.5
  done
  log "ClickHouse did not open 127.0.0.1:$port within 60s:"; tail -20 "$dir/logs/"*.log >&2 || true; exit 1
}

stop() {
  if ! alive; then log "no server running"; rm -f "$pidfile"; return; fi
  local pid; pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { log "stopped"; return; }; sleep 0.5; done
  kill -9 "$pid" || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) alive && answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
