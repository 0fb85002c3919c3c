{{/*
Names, labels and the pieces every workload shares. Components call these with
(dict "root" $ "component" "ingest").
*/}}

{{- define "trailkeep.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "trailkeep.name" -}}
{{- printf "%s-%s" (include "trailkeep.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "trailkeep.selectorLabels" -}}
app.kubernetes.io/name: trailkeep
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "trailkeep.labels" -}}
{{ include "trailkeep.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: trailkeep
{{- end -}}

{{- define "trailkeep.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "trailkeep.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image of one binary: (dict "root" $ "binary" "ingest"). */}}
{{- define "trailkeep.image" -}}
{{- $i := .root.Values.image -}}
{{- $d := get $i.digest .binary -}}
{{- if $d -}}
{{- printf "%s/%s/%s@%s" $i.registry $i.repository .binary $d -}}
{{- else -}}
{{- printf "%s/%s/%s:%s" $i.registry $i.repository .binary (default .root.Chart.AppVersion $i.tag) -}}
{{- end -}}
{{- end -}}

{{/* The restricted Pod Security profile, for the pod and for its container. */}}
{{- define "trailkeep.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "trailkeep.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Liveness on /healthz, readiness on /readyz, on the named port "http". */}}
{{- define "trailkeep.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  timeoutSeconds: 5
  failureThreshold: 3
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 2
  failureThreshold: 60
{{- end -}}

{{/* Pod annotations: Prometheus scraping, the config checksum, the user's own. */}}
{{- define "trailkeep.podAnnotations" -}}
{{- if .root.Values.metrics.podAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{ end -}}
checksum/config: {{ include "trailkeep.config" . | sha256sum }}
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Scheduling and identity shared by every pod spec. */}}
{{- define "trailkeep.podCommon" -}}
serviceAccountName: {{ include "trailkeep.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "trailkeep.podSecurityContext" . | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Plain settings of a component as KEY: "value" lines (its ConfigMap). Paths of mounted
secrets are settings; the secrets themselves are only ever in Secret volumes or
secretKeyRef.
*/}}
{{- define "trailkeep.config" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
TRAILKEEP_LOG_LEVEL: {{ $v.logLevel | quote }}
TRAILKEEP_KAFKA_BROKERS: {{ join "," $v.kafka.brokers | quote }}
{{- with $v.kafka.tls }}
{{- if .enabled }}
TRAILKEEP_KAFKA_TLS: "true"
{{- if .caSecret.name }}
TRAILKEEP_KAFKA_TLS_CA_FILE: {{ printf "/etc/trailkeep/kafka-ca/%s" .caSecret.key | quote }}
{{- end }}
{{- if .clientCertSecret.name }}
TRAILKEEP_KAFKA_TLS_CERT_FILE: "/etc/trailkeep/kafka-client/tls.crt"
TRAILKEEP_KAFKA_TLS_KEY_FILE: "/etc/trailkeep/kafka-client/tls.key"
{{- end }}
{{- if .serverName }}
TRAILKEEP_KAFKA_TLS_SERVER_NAME: {{ .serverName | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.kafka.sasl }}
{{- if .mechanism }}
TRAILKEEP_KAFKA_SASL_MECHANISM: {{ .mechanism | quote }}
TRAILKEEP_KAFKA_SASL_USER: {{ .username | quote }}
TRAILKEEP_KAFKA_SASL_PASSWORD_FILE: {{ printf "/etc/trailkeep/kafka-sasl/%s" .passwordSecret.key | quote }}
{{- end }}
{{- end }}
{{- if or (eq $c "chainer") (hasPrefix "exporter-" $c) }}
TRAILKEEP_KAFKA_FETCH_MAX_WAIT: {{ $v.kafka.fetch.maxWait | quote }}
TRAILKEEP_KAFKA_FETCH_MIN_BYTES: {{ int64 $v.kafka.fetch.minBytes | quote }}
{{- end }}
{{- if ne $c "query" }}
TRAILKEEP_KAFKA_MIN_INSYNC_REPLICAS: {{ $v.kafka.topics.minInsyncReplicas | quote }}
{{- end }}
{{- if or (eq $c "query") (eq $c "chainer") }}
TRAILKEEP_CLICKHOUSE_ADDR: {{ join "," $v.clickhouse.addr | quote }}
TRAILKEEP_CLICKHOUSE_DATABASE: {{ $v.clickhouse.database | quote }}
TRAILKEEP_CLICKHOUSE_USER: {{ $v.clickhouse.user | quote }}
{{- if $v.clickhouse.passwordSecret.name }}
TRAILKEEP_CLICKHOUSE_PASSWORD_FILE: {{ printf "/etc/trailkeep/clickhouse-password/%s" $v.clickhouse.passwordSecret.key | quote }}
{{- end }}
{{- with $v.clickhouse.tls }}
{{- if .enabled }}
TRAILKEEP_CLICKHOUSE_TLS: "true"
{{- if .caSecret.name }}
TRAILKEEP_CLICKHOUSE_TLS_CA_FILE: {{ printf "/etc/trailkeep/clickhouse-ca/%s" .caSecret.key | quote }}
{{- end }}
{{- if .clientCertSecret.name }}
TRAILKEEP_CLICKHOUSE_TLS_CERT_FILE: "/etc/trailkeep/clickhouse-client/tls.crt"
TRAILKEEP_CLICKHOUSE_TLS_KEY_FILE: "/etc/trailkeep/clickhouse-client/tls.key"
{{- end }}
{{- if .serverName }}
TRAILKEEP_CLICKHOUSE_TLS_SERVER_NAME: {{ .serverName | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $c "ingest" }}
TRAILKEEP_INGEST_ADDR: "0.0.0.0:8080"
TRAILKEEP_INGEST_OTLP_GRPC_ADDR: {{ ternary (printf "0.0.0.0:%v" $v.ingest.otlpGrpc.port) "" $v.ingest.otlpGrpc.enabled | quote }}
TRAILKEEP_INGEST_TOKENS_FILE: {{ printf "/etc/trailkeep/ingest-tokens/%s" $v.ingest.tokensSecret.key | quote }}
TRAILKEEP_INGEST_IP_KEY_FILE: {{ printf "/etc/trailkeep/ip-key/%s" $v.ingest.ipKeySecret.key | quote }}
TRAILKEEP_EVENTS_PARTITIONS: {{ $v.kafka.topics.partitions | quote }}
TRAILKEEP_EVENTS_REPLICATION: {{ $v.kafka.topics.replication | quote }}
{{- with $v.ingest.trustedProxies }}
TRAILKEEP_INGEST_TRUSTED_PROXIES: {{ join "," . | quote }}
{{- end }}
{{- range $k, $val := $v.ingest.env }}
{{ $k }}: {{ $val | toString | quote }}
{{- end }}
{{- else if eq $c "query" }}
TRAILKEEP_QUERY_ADDR: "0.0.0.0:8081"
TRAILKEEP_QUERY_TOKENS_FILE: {{ printf "/etc/trailkeep/query-tokens/%s" $v.query.tokensSecret.key | quote }}
{{- range $k, $val := $v.query.env }}
{{ $k }}: {{ $val | toString | quote }}
{{- end }}
{{- else if eq $c "chainer" }}
TRAILKEEP_CHAINER_ADDR: "0.0.0.0:8083"
TRAILKEEP_DEPLOYMENT: {{ $v.deployment | quote }}
TRAILKEEP_SIGNER_KEY_FILE: {{ printf "/etc/trailkeep/signer/%s" $v.chainer.signerKeySecret.key | quote }}
TRAILKEEP_CHAINER_REPLICATION: {{ $v.kafka.topics.replication | quote }}
TRAILKEEP_CHECKPOINT_EVERY: {{ $v.chainer.checkpointEvery | quote }}
TRAILKEEP_CHECKPOINT_INTERVAL: {{ $v.chainer.checkpointInterval | quote }}
TRAILKEEP_CHECKPOINT_REFRESH: {{ $v.chainer.checkpointRefresh | quote }}
TRAILKEEP_HOT_WINDOW: {{ $v.clickhouse.hotWindow | quote }}
{{- with $v.chainer.verifierKeys }}
TRAILKEEP_VERIFIER_KEYS: {{ join ";" . | quote }}
{{- end }}
{{- range $k, $val := $v.chainer.env }}
{{ $k }}: {{ $val | toString | quote }}
{{- end }}
{{- else if hasPrefix "exporter-" $c }}
{{- $sink := trimPrefix "exporter-" $c }}
{{- $s := get $v.exporter $sink }}
TRAILKEEP_EXPORTER_ADDR: "0.0.0.0:8082"
TRAILKEEP_EXPORTER_SINKS: {{ $sink | quote }}
TRAILKEEP_EXPORTER_REPLICATION: {{ $v.kafka.topics.replication | quote }}
{{- if eq $sink "s3" }}
TRAILKEEP_S3_BUCKET: {{ $s.bucket | quote }}
TRAILKEEP_S3_PREFIX: {{ $s.prefix | quote }}
TRAILKEEP_S3_REGION: {{ $s.region | quote }}
{{- with $s.endpoint }}
TRAILKEEP_S3_ENDPOINT: {{ . | quote }}
{{- end }}
TRAILKEEP_S3_PATH_STYLE: {{ $s.pathStyle | quote }}
TRAILKEEP_S3_LOCK_MODE: {{ $s.lockMode | quote }}
TRAILKEEP_S3_RETENTION: {{ $s.retention | quote }}
{{- else if eq $sink "splunk" }}
TRAILKEEP_SPLUNK_HEC_URL: {{ $s.url | quote }}
{{- with $s.index }}
TRAILKEEP_SPLUNK_INDEX: {{ . | quote }}
{{- end }}
{{- else if eq $sink "datadog" }}
DD_SITE: {{ $s.site | quote }}
{{- end }}
{{- range $k, $val := $s.env }}
{{ $k }}: {{ $val | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Secret volumes a component mounts, as (name, secret, items, mountPath) rows; the
volumes and volumeMounts templates below both read it, so they cannot disagree.
*/}}
{{- define "trailkeep.secretMounts" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
{{- $rows := list -}}
{{- if and $v.kafka.tls.enabled $v.kafka.tls.caSecret.name }}{{ $rows = append $rows (dict "name" "kafka-ca" "secret" $v.kafka.tls.caSecret.name "keys" (list $v.kafka.tls.caSecret.key)) }}{{ end -}}
{{- if and $v.kafka.tls.enabled $v.kafka.tls.clientCertSecret.name }}{{ $rows = append $rows (dict "name" "kafka-client" "secret" $v.kafka.tls.clientCertSecret.name "keys" (list "tls.crt" "tls.key")) }}{{ end -}}
{{- if $v.kafka.sasl.mechanism }}{{ $rows = append $rows (dict "name" "kafka-sasl" "secret" $v.kafka.sasl.passwordSecret.name "keys" (list $v.kafka.sasl.passwordSecret.key)) }}{{ end -}}
{{- if or (eq $c "query") (eq $c "chainer") -}}
{{- if $v.clickhouse.passwordSecret.name }}{{ $rows = append $rows (dict "name" "clickhouse-password" "secret" $v.clickhouse.passwordSecret.name "keys" (list $v.clickhouse.passwordSecret.key)) }}{{ end -}}
{{- if and $v.clickhouse.tls.enabled $v.clickhouse.tls.caSecret.name }}{{ $rows = append $rows (dict "name" "clickhouse-ca" "secret" $v.clickhouse.tls.caSecret.name "keys" (list $v.clickhouse.tls.caSecret.key)) }}{{ end -}}
{{- if and $v.clickhouse.tls.enabled $v.clickhouse.tls.clientCertSecret.name }}{{ $rows = append $rows (dict "name" "clickhouse-client" "secret" $v.clickhouse.tls.clientCertSecret.name "keys" (list "tls.crt" "tls.key")) }}{{ end -}}
{{- end -}}
{{- if eq $c "ingest" -}}
{{- $rows = append $rows (dict "name" "ingest-tokens" "secret" $v.ingest.tokensSecret.name "keys" (list $v.ingest.tokensSecret.key)) -}}
{{- $rows = append $rows (dict "name" "ip-key" "secret" $v.ingest.ipKeySecret.name "keys" (list $v.ingest.ipKeySecret.key)) -}}
{{- else if eq $c "query" -}}
{{- $rows = append $rows (dict "name" "query-tokens" "secret" $v.query.tokensSecret.name "keys" (list $v.query.tokensSecret.key)) -}}
{{- else if eq $c "chainer" -}}
{{- $rows = append $rows (dict "name" "signer" "secret" $v.chainer.signerKeySecret.name "keys" (list $v.chainer.signerKeySecret.key)) -}}
{{- end -}}
{{- toJson $rows -}}
{{- end -}}

{{- define "trailkeep.volumes" -}}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
{{- range (include "trailkeep.secretMounts" . | fromJsonArray) }}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      {{- range .keys }}
      - {key: {{ . }}, path: {{ . }}}
      {{- end }}
{{- end }}
{{- end -}}

{{- define "trailkeep.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- range (include "trailkeep.secretMounts" . | fromJsonArray) }}
- name: {{ .name }}
  mountPath: /etc/trailkeep/{{ .name }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The container of a component: (dict "root" $ "component" c "binary" b "port" p "env" list "resources" r). */}}
{{- define "trailkeep.container" -}}
- name: {{ .binary }}
  image: {{ include "trailkeep.image" (dict "root" .root "binary" .binary) }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  envFrom:
    - configMapRef:
        name: {{ include "trailkeep.name" . }}
  {{- with .env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - {name: http, containerPort: {{ .port }}, protocol: TCP}
    {{- with .extraPorts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- include "trailkeep.probes" . | nindent 2 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  securityContext:
    {{- include "trailkeep.containerSecurityContext" . | nindent 4 }}
  volumeMounts:
    {{- include "trailkeep.volumeMounts" . | nindent 4 }}
{{- end -}}
