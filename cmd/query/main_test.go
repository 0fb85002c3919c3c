package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/proctest"
)

// TestStartup runs the real binary on the real broker and ClickHouse: ready once the
// store answers, an authenticated search served and counted in /metrics, an
// unauthenticated one refused, a clean exit on SIGTERM.
func TestStartup(t *testing.T) {
	b := kafkatest.Shared(t)
	store := chtest.Store(t)
	bin := proctest.Build(t, "query")
	secret := "startup-query-secret-0123456789abcdef"
	sum := sha256.Sum256([]byte(secret))
	addr := proctest.Addr(t)
	// The access log goes to the events topic, which ingest creates: until it
	// exists the API is not ready (it would refuse every call).
	topic := kafkatest.Topic("startup.access")
	p := proctest.Start(t, bin,
		"TRAILKEEP_QUERY_ADDR="+addr, "TRAILKEEP_KAFKA_BROKERS="+b.Addr,
		"TRAILKEEP_EVENTS_TOPIC="+topic,
		"TRAILKEEP_CLICKHOUSE_ADDR="+chtest.Addr, "TRAILKEEP_CLICKHOUSE_DATABASE="+store.Database(),
		fmt.Sprintf(`TRAILKEEP_QUERY_TOKENS={"tokens":[{"name":"r","sha256":"%s","role":"reader","tenants":["acme"]}]}`, hex.EncodeToString(sum[:])),
	)
	p.WaitStatus(t, "http://"+addr+"/healthz", 200, 30*time.Second)
	waitBody(t, "http://"+addr+"/readyz", "access log unavailable: topic "+topic)
	b.CreateTopic(t, topic, 1)
	p.WaitStatus(t, "http://"+addr+"/readyz", 200, 60*time.Second)
	get := func(path, token string) (int, string) {
		req, err := http.NewRequest("GET", "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	if code, body := get("/v1/events?limit=5", secret); code != 200 {
		t.Fatalf("search: %d %s\n%s", code, body, p.Log())
	}
	if code, _ := get("/v1/events", ""); code != 401 {
		t.Fatalf("search without a token: %d, want 401", code)
	}
	if _, metrics := get("/metrics", ""); !strings.Contains(metrics, `trailkeep_query_requests_total{code="200",endpoint="events"}`) {
		t.Fatalf("/metrics does not count the search:\n%.2000s", metrics)
	}
}

// waitBody polls url until a 503 answer contains want.
func waitBody(t *testing.T, url, want string) {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last = fmt.Sprintf("%d %s", resp.StatusCode, body); resp.StatusCode == 503 && strings.Contains(string(body), want) {
			return
		}
	}
	t.Fatalf("%s never answered 503 with %q (last: %s)", url, want, last)
}
