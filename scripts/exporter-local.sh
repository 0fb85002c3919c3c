#!/usr/bin/env bash
# Local exporter (cmd/exporter) for `make run`: archives scripts/kafka.sh's
# audit.chained into the WORM bucket trailkeep-archive (Object Lock, COMPLIANCE, 1 day)
# on scripts/versitygw.sh's S3 server. Splunk and Datadog need real endpoints and are
# not started here (their tests run against in-process receivers).
#
#   scripts/exporter-local.sh start   start versitygw, create the bucket once, start
#                                     bin/exporter (metrics on 127.0.0.1:8082)
#   scripts/exporter-local.sh stop    SIGTERM
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/exporter"
log() { echo "exporter-local.sh: $*" >&2; }
source "$root/scripts/local-service.sh"
s3=http://${TRAILKEEP_S3_ADDR:-127.0.0.1:17070}
key=${TRAILKEEP_S3_ACCESS_KEY:-trailkeep}
secret=${TRAILKEEP_S3_SECRET_KEY:-trailkeep-secret}
bucket=trailkeep-archive

start() {
  mkdir -p "$dir" "$root/bin"
  svc_require "$root/bin/exporter"
  "$root/scripts/versitygw.sh" start
  if svc_running; then log "reusing exporter pid $(cat "$dir/pid")"; return; fi
  # Create the bucket with Object Lock (S3 CreateBucket, signed by curl's SigV4).
  code=$(curl -s -o "$dir/bucket.out" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" \
    -X PUT -H 'x-amz-bucket-object-lock-enabled: true' \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' "$s3/$bucket")
  case "$code" in
    200) log "created bucket $bucket with Object Lock" ;;
    409) ;; # exists
    *) log "create bucket $bucket: HTTP $code"; cat "$dir/bucket.out" >&2; exit 1 ;;
  esac
  svc_log_start "$dir/exporter.log"
  TRAILKEEP_EXPORTER_SINKS=s3 TRAILKEEP_EXPORTER_INSTANCE_ID=local-exporter-0 \
  TRAILKEEP_S3_BUCKET=$bucket TRAILKEEP_S3_PREFIX=local TRAILKEEP_S3_ENDPOINT=$s3 TRAILKEEP_S3_PATH_STYLE=true \
  TRAILKEEP_S3_ACCESS_KEY=$key TRAILKEEP_S3_SECRET_KEY=$secret TRAILKEEP_S3_RETENTION=1d TRAILKEEP_S3_LINGER=1s \
    setsid nohup "$root/bin/exporter" >>"$dir/exporter.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  ready() { curl -sf http://127.0.0.1:8082/healthz >/dev/null; }
  svc_wait "$dir/exporter.log" ready
  log "archiving audit.chained to s3://$bucket/local ($s3)"
}

stop() { svc_stop; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
