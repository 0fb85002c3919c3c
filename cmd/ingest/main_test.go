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

	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/proctest"
)

// TestStartup runs the real binary on the real broker: ready once Kafka answers, an
// accepted hook counted in /metrics, a clean exit on SIGTERM.
func TestStartup(t *testing.T) {
	b := kafkatest.Shared(t)
	bin := proctest.Build(t, "ingest")
	secret := "startup-test-secret-0123456789abcdef"
	sum := sha256.Sum256([]byte(secret))
	addr := proctest.Addr(t)
	p := proctest.Start(t, bin,
		"TRAILKEEP_INGEST_ADDR="+addr, "TRAILKEEP_INGEST_OTLP_GRPC_ADDR="+proctest.Addr(t),
		"TRAILKEEP_KAFKA_BROKERS="+b.Addr, "TRAILKEEP_EVENTS_TOPIC="+kafkatest.Topic("startup.events"),
		fmt.Sprintf(`TRAILKEEP_INGEST_TOKENS={"tokens":[{"name":"t","sha256":"%s","tenant":"acme","source":"claude_code","scopes":["hooks:write"]}]}`, hex.EncodeToString(sum[:])),
		"TRAILKEEP_INGEST_IP_KEY="+strings.Repeat("ab", 32),
	)
	p.WaitStatus(t, "http://"+addr+"/healthz", 200, 30*time.Second)
	p.WaitStatus(t, "http://"+addr+"/readyz", 200, 60*time.Second)

	req, err := http.NewRequest("POST", "http://"+addr+"/v1/hooks/claude-code",
		strings.NewReader(`{"session_id":"s1","hook_event_name":"SessionStart","source":"startup","cwd":"/r","transcript_path":"/t"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("hook: %d %s (%v)\n%s", resp.StatusCode, body, err, p.Log())
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(metrics), `trailkeep_ingest_events_accepted_total{`) {
		t.Fatalf("/metrics does not count the accepted hook:\n%.2000s", metrics)
	}
}

// TestConfigErrors: ingest refuses to start without what it cannot run safely
// without, naming the variable and how to make it.
func TestConfigErrors(t *testing.T) {
	bin := proctest.Build(t, "ingest")
	tokens := `TRAILKEEP_INGEST_TOKENS={"tokens":[{"name":"t","sha256":"` + strings.Repeat("0", 64) + `","tenant":"acme","source":"claude_code","scopes":["hooks:write"]}]}`
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no tokens", nil, "TRAILKEEP_INGEST_TOKENS_FILE or TRAILKEEP_INGEST_TOKENS"},
		{"no IP key", []string{tokens}, "TRAILKEEP_INGEST_IP_KEY (or _FILE) is required"},
		{"short IP key", []string{tokens, "TRAILKEEP_INGEST_IP_KEY=abcd"}, "TRAILKEEP_INGEST_IP_KEY"},
		{"bad token file", []string{`TRAILKEEP_INGEST_TOKENS={"tokens":[{"name":"t"}]}`}, "sha256"},
		{"unknown compression", []string{tokens, "TRAILKEEP_INGEST_IP_KEY=" + strings.Repeat("ab", 32), "TRAILKEEP_INGEST_KAFKA_COMPRESSION=brotli"},
			"TRAILKEEP_INGEST_KAFKA_COMPRESSION: kafka: compression \"brotli\": want lz4, zstd, snappy, gzip or none"},
		{"bad linger", []string{tokens, "TRAILKEEP_INGEST_IP_KEY=" + strings.Repeat("ab", 32), "TRAILKEEP_INGEST_KAFKA_LINGER=soon"}, "TRAILKEEP_INGEST_KAFKA_LINGER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := proctest.Run(t, bin, tc.env...)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 1 naming %q", code, out, tc.want)
			}
		})
	}
}
