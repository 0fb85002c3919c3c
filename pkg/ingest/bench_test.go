package ingest

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkEventsBatch500 measures the CPU cost of ingest's own work per event (decode,
// redact, stamp, validate, canonicalise, respond) for an NDJSON batch of 500, with an
// in-memory publisher; the Kafka round trip is measured by trailctl load.
func BenchmarkEventsBatch500(b *testing.B) {
	s := newTestServer(b, &memPublisher{failAt: -1})
	var sb strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&sb, `{"action":"skill.updated","occurred_at":"2026-02-01T10:00:00.123456Z","actor":{"type":"user","id":"usr_%d","email":"user%d@acme.example"},"resource":{"type":"skill","id":"skl_%d","name":"api-conventions-%d"},"change":{"from_version":"1.4.0","to_version":"1.5.0","diff_summary":"Adjusted rate limiting instructions for payments endpoints"},"result":{"status":"success"},"metadata":{"request_id":"req-%d","team":"payments"}}`+"\n", i, i, i, i, i)
	}
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if r := post(b, s, "/v1/events", tokRegistry, "application/x-ndjson", body); r.code != 200 {
			b.Fatal(r.code, string(r.body[:200]))
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}
