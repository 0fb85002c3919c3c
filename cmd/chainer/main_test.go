package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/pkg/chain"
)

// TestStartup runs the real binary on the real broker and ClickHouse: /readyz 503
// naming the stages until both run, then 200; /metrics served; a clean exit on
// SIGTERM.
func TestStartup(t *testing.T) {
	b := kafkatest.Shared(t)
	store := chtest.Store(t)
	bin := proctest.Build(t, "chainer")
	skey, _, err := chain.GenerateKey("startup-test")
	if err != nil {
		t.Fatal(err)
	}
	prefix := kafkatest.Topic("startup")
	// The input topic is ingest's; the chainer sizes its outputs from it.
	b.CreateTopic(t, prefix+".events", 2)
	addr := proctest.Addr(t)
	p := proctest.Start(t, bin,
		"TRAILKEEP_CHAINER_ADDR="+addr, "TRAILKEEP_KAFKA_BROKERS="+b.Addr, "TRAILKEEP_SIGNER_KEY="+skey,
		"TRAILKEEP_EVENTS_TOPIC="+prefix+".events", "TRAILKEEP_CHAINED_TOPIC="+prefix+".chained",
		"TRAILKEEP_CHECKPOINTS_TOPIC="+prefix+".checkpoints", "TRAILKEEP_DEADLETTER_TOPIC="+prefix+".deadletter",
		"TRAILKEEP_CHAINER_GROUP="+prefix+"-chainer", "TRAILKEEP_WRITER_GROUP="+prefix+"-writer",
		"TRAILKEEP_CHAINER_TRANSACTIONAL_ID="+prefix+"-0",
		"TRAILKEEP_CLICKHOUSE_ADDR="+chtest.Addr, "TRAILKEEP_CLICKHOUSE_DATABASE="+store.Database(),
	)
	p.WaitStatus(t, "http://"+addr+"/healthz", 200, 30*time.Second)
	p.WaitStatus(t, "http://"+addr+"/readyz", 200, 90*time.Second)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("/metrics: %d (%v)\n%.500s", resp.StatusCode, err, body)
	}
}

// TestConfigErrors: a chainer that cannot sign refuses to run, naming the variable.
func TestConfigErrors(t *testing.T) {
	bin := proctest.Build(t, "chainer")
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no signing key", []string{"TRAILKEEP_WRITER_ENABLED=false", "TRAILKEEP_CHAINER_ADDR="}, "TRAILKEEP_SIGNER_KEY or TRAILKEEP_SIGNER_KEY_FILE is required"},
		{"both stages off", []string{"TRAILKEEP_WRITER_ENABLED=false", "TRAILKEEP_CHAINER_ENABLED=false"}, "both stages are disabled"},
		{"bad signing key", []string{"TRAILKEEP_WRITER_ENABLED=false", "TRAILKEEP_CHAINER_ADDR=", "TRAILKEEP_SIGNER_KEY=nope"}, "signer"},
		{"fetch wait out of bounds", []string{"TRAILKEEP_CHAINER_ADDR=", "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=1m"}, "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=1m0s: want 10ms to 5s"},
		{"fetch min bytes out of bounds", []string{"TRAILKEEP_CHAINER_ADDR=", "TRAILKEEP_KAFKA_FETCH_MIN_BYTES=-5"}, "TRAILKEEP_KAFKA_FETCH_MIN_BYTES=-5: want 1 to 52428800"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := proctest.Run(t, bin, tc.env...)
			if code != 1 || !strings.Contains(strings.ToLower(out), strings.ToLower(tc.want)) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 1 naming %q", code, out, tc.want)
			}
		})
	}
}
