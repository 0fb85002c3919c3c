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

config() {
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
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
    log "127.0.0.1:$port is already served by a process not started from $dir; using it"
    return
  fi
  fetch
  config
  local cp; cp=$(classpath)
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    log "formatting KRaft storage in $dir/data"
    java -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool \
      format -t trailkeep-local-cluster-01 -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 \
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
