package ingest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// benchEvent is the benchmarks' ~450-byte event, distinct by i.
func benchEvent(i int) string {
	return fmt.Sprintf(`{"action":"skill.updated","occurred_at":"2026-02-01T10:00:00.123456Z","actor":{"type":"user","id":"usr_%d","email":"user%d@acme.example"},"resource":{"type":"skill","id":"skl_%d","name":"api-conventions-%d"},"change":{"from_version":"1.4.0","to_version":"1.5.0","diff_summary":"Adjusted rate limiting instructions for payments endpoints"},"result":{"status":"success"},"metadata":{"request_id":"req-%d","team":"payments"}}`, i, i, i, i, i)
}

// BenchmarkEventsBatch500 measures the CPU cost of ingest's own work per event (decode,
// redact, stamp, validate, canonicalise, respond) for an NDJSON batch of 500, with an
// in-memory publisher; the Kafka round trip is measured by trailctl load.
func BenchmarkEventsBatch500(b *testing.B) {
	s := newTestServer(b, &memPublisher{failAt: -1})
	var sb strings.Builder
	for i := 0; i < 500; i++ {
		sb.WriteString(benchEvent(i) + "\n")
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

// BenchmarkSingleEventHTTP measures what one event a request costs end to end in
// ingest's process, the Claude Code hook's shape: a real loopback HTTP/1.1 server
// and keep-alive clients (their cost is in the figure too; profile the server's
// functions), one ~450-byte event a request, an in-memory publisher.
func BenchmarkSingleEventHTTP(b *testing.B) {
	s := newTestServer(b, &memPublisher{failAt: -1})
	srv := httptest.NewServer(s)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 1024}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := benchEvent(int(i))
			req, _ := http.NewRequest("POST", srv.URL+"/v1/events", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tokRegistry)
			req.Header.Set("Content-Type", "application/json")
			res, err := cl.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode/100 != 2 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "events/s")
}
