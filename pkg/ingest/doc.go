// Package ingest is trailkeep's front door: an http.Handler that authenticates
// senders, maps each source format onto the canonical event (package source/...),
// redacts secrets, stamps server fields, validates and canonicalises (package event)
// and hands the canonical bytes to a Publisher — answering 2xx only after the
// publisher reports every accepted item durable.
//
// Endpoints:
//
//	POST /v1/events             canonical events: one JSON object, a JSON array, or NDJSON
//	POST /v1/hooks/claude-code  a raw Claude Code hook payload; 200 with an EMPTY body
//	POST /v1/cloudevents        CloudEvents 1.0, structured or batch mode
//	GET  /healthz               the process is up
//	GET  /readyz                the publisher reaches Kafka
//	GET  /metrics               Prometheus
//
// Status codes: 200 all accepted; 207 a batch where some items were rejected (the
// body says which and why); 400/413/415 bad input with a JSON body naming the field
// and rule; 401/403 authentication; 503 with Retry-After when Kafka is unreachable or
// the producer buffer is full — the client should retry, nothing was acknowledged
// for the items marked "unavailable".
package ingest
