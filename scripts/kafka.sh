#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) for tests and `make run`.
#
#   scripts/kafka.sh start   resolve the broker from Maven Central (once), format storage
#                            (once), start it on 127.0.0.1 and wait until it serves requests;
#                            reuses a broker that is already running
#   scripts/kafka.sh stop    stop the broker started from this checkout
#   scripts/kafka.sh status  exit 0 when the broker answers
#
# State lives in .run/kafka (git-ignored; TRAILKEEP_KAFKA_DIR overrides): data/, logs/,
# broker.pid. The jars go to .run/kafka-lib, shared by every broker directory.
# TRAILKEEP_KAFKA_PORT (default 19092) and TRAILKEEP_KAFKA_CONTROLLER_PORT (19093) pick the
# ports; a non-default port keeps the broker clear of any Kafka a developer already runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="${TRAILKEEP_KAFKA_DIR:-$root/.run/kafka}"
lib="$root/.run/kafka-lib"  # jars, shared by every broker directory
port=${TRAILKEEP_KAFKA_PORT:-19092}
cport=${TRAILKEEP_KAFKA_CONTROLLER_PORT:-19093}
pidfile="$dir/broker.pid"

log() { echo "kafka.sh: $*" >&2; }

need_java() {
  local sudo=""
  if [[ $(id -u) != 0 ]]; then sudo=sudo; fi
  if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    log "installing OpenJDK 17 and Maven (apt)"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  fi
}

fetch() {
  # A marker file makes an interrupted download retry instead of starting half a classpath.
  # The marker holds the pom's digest, so a version bump in the pom re-resolves.
  local want; want=$(sha256sum "$root/deploy/local/kafka/pom.xml" | cut -d' ' -f1)
  if [[ -f "$lib/.complete" && "$(cat "$lib/.complete")" == "$want" ]]; then return; fi
  need_java
  log "resolving the broker from Maven Central (deploy/local/kafka/pom.xml)"
  rm -rf "$lib"
  mkdir -p "$lib"
  mvn -q -B -f "$root/deploy/local/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib" >&2
  echo "$want" >"$lib/.complete"
}

alive() {
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  # The broker logs this line once its listener is open and the metadata log is loaded.
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# With TRAILKEEP_KAFKA_SECURE=1 the broker also listens on SASL_SSL (port+2: PLAIN,
# SCRAM-SHA-256 and SCRAM-SHA-512; users alice/alice-secret and bob/bob-secret) and on
# SSL with a required client certificate (port+3), with a CA, server and client
# certificate generated into $dir/tls (ca.pem, client.pem, client-key.pem), for the
# connection tests. The plaintext listener stays for administration.
secure=${TRAILKEEP_KAFKA_SECURE:-0}
sport=$((port + 2))
tport=$((port + 3))

tls_material() {
  local t="$dir/tls"
  [[ -f "$t/.complete" ]] && return
  if ! command -v openssl >/dev/null 2>&1; then
    local sudo=""; [[ $(id -u) != 0 ]] && sudo=sudo
    log "installing openssl (apt) for the TLS test material"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq openssl >/dev/null
  fi
  need_java  # keytool
  rm -rf "$t" && mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=trailkeep-test-ca" \
    -keyout "$t/ca-key.pem" -out "$t/ca.pem" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$t/san.ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$t/server-key.pem" -out "$t/server.csr" >/dev/null 2>&1
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial -days 3650 \
    -extfile "$t/san.ext" -out "$t/server.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=trailkeep-client" -keyout "$t/client-key.pem" -out "$t/client.csr" >/dev/null 2>&1
  openssl x509 -req -in "$t/client.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial -days 3650 -out "$t/client.pem" >/dev/null 2>&1
  openssl pkcs12 -export -in "$t/server.pem" -inkey "$t/server-key.pem" -certfile "$t/ca.pem" \
    -name broker -passout pass:trailkeep -out "$t/server.p12"
  # keytool marks the CA as a trusted entry, which a certificate-only PKCS12 written
  # by openssl is not for Java.
  keytool -importcert -noprompt -alias ca -file "$t/ca.pem" -keystore "$t/truststore.p12" -storetype PKCS12 -storepass trailkeep >/dev/null 2>&1
  touch "$t/.complete"
}

secure_props() {
  local t="$dir/tls"
  cat <<PROPS
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$tport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$tport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
ssl.keystore.type=PKCS12
ssl.keystore.location=$t/server.p12
ssl.keystore.password=trailkeep
ssl.key.password=trailkeep
ssl.truststore.type=PKCS12
ssl.truststore.location=$t/truststore.p12
ssl.truststore.password=trailkeep
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" user_bob="bob-secret";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
PROPS
}

config() {
  mkdir -p "$dir/data" "$dir/logs"
  local listeners="listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ "$secure" == 1 ]]; then
    tls_material
    listeners=$(secure_props)
  fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# fsync is left to the OS page cache as in any Kafka deployment; durability across a
# broker restart (not a power cut) is what the tests check.
log.flush.interval.messages=9223372036854775807
PROPS
  cat >"$dir/log4j2.properties" <<PROPS
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
PROPS
}

classpath() {
  local cp=""
  for j in "$lib"/*.jar; do cp="$cp:$j"; done
  echo "${cp#:}"
}

start() {
  # Test packages run in parallel and each may call start: one at a time per directory.
  mkdir -p "$(dirname "$dir")"
  exec 9>"$dir.lock"
  flock 9
  if alive && answers; then
    log "reusing broker pid $(cat "$pidfile") on 127.0.0.1:$port"
    return
  fi
  if answers; then
    # Started from another checkout (or by hand): use it rather than fail on the port.
    if [[ "${TRAILKEEP_KAFKA_EXCLUSIVE:-0}" == 1 ]]; then
      log "127.0.0.1:$port is served by a process not started from $dir, and this broker must be its own (TRAILKEEP_KAFKA_EXCLUSIVE)"
      exit 1
    fi
    log "127.0.0.1:$port is already served by a process not started from $dir; using it"
    return
  fi
  fetch
  config
  local cp; cp=$(classpath)
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    log "formatting KRaft storage in $dir/data"
    local scram=()
    if [[ "$secure" == 1 ]]; then
      for u in alice bob; do
        scram+=(--add-scram "SCRAM-SHA-256=[name=$u,password=$u-secret]" --add-scram "SCRAM-SHA-512=[name=$u,password=$u-secret]")
      done
    fi
    java -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool \
      format -t trailkeep-local-cluster-01 -c "$dir/server.properties" "${scram[@]}" >"$dir/logs/format.log" 2>&1 \
      || { cat "$dir/logs/format.log" >&2; exit 1; }
  fi
  log "starting broker on 127.0.0.1:$port"
  # setsid: the broker must outlive the shell (and the test binary) that started it;
  # 9>&-: it must not inherit the start lock, or the next start would wait forever.
  setsid nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/logs/stdout.log" 2>&1 </dev/null 9>&- &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if answers; then log "broker ready"; return; fi
    if ! alive; then
      log "broker exited during start-up; last log lines:"
      tail -30 "$dir/logs/stdout.log" "$dir/logs/server.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  log "broker did not open 127.0.0.1:$port within 60s"; exit 1
}

stop() {
  if ! alive; then log "no broker running"; rm -f "$pidfile"; return; fi
  local pid; pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$pidfile"; log "stopped"; return; fi
    sleep 0.5
  done
  log "broker $pid ignored SIGTERM for 30s; killing"
  kill -9 "$pid" || true
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) alive && answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
