{{/*
The components this release runs, as a JSON list of (component, binary, port) rows:
ingest, query, chainer, and one exporter per enabled sink.
*/}}
{{- define "trailkeep.components" -}}
{{- $rows := list (dict "component" "ingest" "binary" "ingest" "port" 8080) (dict "component" "query" "binary" "query" "port" 8081) (dict "component" "chainer" "binary" "chainer" "port" 8083) -}}
{{- range $sink := list "s3" "splunk" "datadog" -}}
{{- if (get $.Values.exporter $sink).enabled -}}
{{- $rows = append $rows (dict "component" (printf "exporter-%s" $sink) "binary" "exporter" "port" 8082 "sink" $sink) -}}
{{- end -}}
{{- end -}}
{{- toJson $rows -}}
{{- end -}}
