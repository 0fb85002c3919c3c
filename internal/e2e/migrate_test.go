package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/internal/trialsecrets"
)

// postMigrated posts n canonical events with ids prefix-0..n-1 and fails unless
// ingest accepted every one.
func postMigrated(t *testing.T, url, token, prefix string, n int) {
	t.Helper()
	var body bytes.Buffer
	for i := range n {
		fmt.Fprintf(&body, `{"action":"test.migrated","actor":{"type":"service","id":"migrate"},"resource":{"type":"doc","id":"%s-%d"}}`+"\n", prefix, i)
	}
	code, resp := httpPost(url+"/v1/events", token, "application/x-ndjson", body.Bytes())
	var r struct{ Results []struct{ Status string } }
	accepted := 0
	if json.Unmarshal(resp, &r) == nil {
		for _, it := range r.Results {
			if it.Status == "accepted" {
				accepted++
			}
		}
	}
	if code/100 != 2 || accepted != n {
		t.Fatalf("post %d %s events: %d %s", n, prefix, code, resp)
	}
}

// TestMigrateDevIntoKafkaAndClickHouse: trailkeep dev chains some events and is
// killed right after acknowledging more; trailctl migrate moves its log into an
// empty Kafka (a second run is refused); the distributed chainer and writer started
// on it with the dev deployment name and key store every acknowledged event once,
// continue the chain with new events, and trailctl verify --store passes.
func TestMigrateDevIntoKafkaAndClickHouse(t *testing.T) {
	d := newDev(t)
	d.start()
	tok := d.tokens["REGISTRY_TOKEN"]
	postMigrated(t, "http://"+d.ingest, tok, "chained", 40)
	eventually(t, 60*time.Second, func() string {
		if rows := d.sql("SELECT count() AS n FROM audit_events WHERE action = 'test.migrated'"); len(rows) != 1 || rows[0][0] != float64(40) {
			return fmt.Sprintf("dev stored %v of 40", rows)
		}
		if rows := d.sql("SELECT count() AS n FROM audit_checkpoints"); len(rows) != 1 || rows[0][0] == float64(0) {
			return fmt.Sprintf("dev has signed no checkpoint yet (%v)", rows)
		}
		return ""
	})
	postMigrated(t, "http://"+d.ingest, tok, "acked", 40) // maybe not chained yet when killed
	d.kill()

	broker := kafkatest.Private(t, "kafka-migrate-test", 19492)
	out, code := d.ctl("migrate", "--from", d.data, "--brokers", broker.Addr, "--replication", "1")
	if code != 0 || !strings.Contains(out, "TRAILKEEP_DEPLOYMENT=dev") {
		t.Fatalf("migrate: exit %d\n%s", code, out)
	}
	t.Log(strings.TrimSpace(out))
	if out, code := d.ctl("migrate", "--from", d.data, "--brokers", broker.Addr, "--replication", "1"); code != 1 || !strings.Contains(out, "not empty") {
		t.Fatalf("a second migrate into the same cluster: exit %d, want 1 naming the non-empty topic\n%s", code, out)
	}

	store := chtest.Store(t)
	secrets := filepath.Join(d.data, "secrets")
	common := []string{"TRAILKEEP_KAFKA_BROKERS=" + broker.Addr, "TRAILKEEP_DEPLOYMENT=dev"}
	proctest.Start(t, proctest.Build(t, "chainer"), append(common,
		"TRAILKEEP_SIGNER_KEY_FILE="+filepath.Join(secrets, trialsecrets.SignerKey),
		"TRAILKEEP_CHAINER_TRANSACTIONAL_ID=migrated-0", "TRAILKEEP_CHAINER_ADDR="+proctest.Addr(t),
		"TRAILKEEP_CHECKPOINT_INTERVAL=500ms", "TRAILKEEP_WRITER_BATCH_AGE=200ms",
		"TRAILKEEP_CLICKHOUSE_ADDR="+chtest.Addr, "TRAILKEEP_CLICKHOUSE_DATABASE="+store.Database())...)
	ingestAddr := proctest.Addr(t)
	ing := proctest.Start(t, proctest.Build(t, "ingest"), append(common, "TRAILKEEP_INGEST_ADDR="+ingestAddr,
		"TRAILKEEP_INGEST_OTLP_GRPC_ADDR=", "TRAILKEEP_INGEST_MEMORY_LIMIT=0",
		"TRAILKEEP_INGEST_TOKENS_FILE="+filepath.Join(secrets, trialsecrets.IngestTokens),
		"TRAILKEEP_INGEST_IP_KEY_FILE="+filepath.Join(secrets, trialsecrets.IPKey))...)
	ing.WaitStatus(t, "http://"+ingestAddr+"/readyz", 200, 60*time.Second)

	sqlOut := func(stmt string) string {
		out, code := d.ctl("sql", "--clickhouse", chtest.Addr, "--database", store.Database(), "-o", "csv", stmt)
		if code != 0 {
			t.Fatalf("trailctl sql: exit %d\n%s", code, out)
		}
		return strings.TrimSpace(out)
	}
	stored := func(want int) {
		t.Helper()
		eventually(t, 90*time.Second, func() string {
			got := sqlOut("SELECT count() AS n, uniqExact(event_id) AS u FROM audit_events WHERE action = 'test.migrated'")
			if !strings.HasSuffix(got, fmt.Sprintf("%d,%d", want, want)) {
				return fmt.Sprintf("the destination stored (rows, distinct ids) %q; want %d of each", got, want)
			}
			return ""
		})
	}
	stored(80) // everything dev acknowledged, once
	postMigrated(t, "http://"+ingestAddr, tok, "after", 10)
	stored(90)
	// One chain on partition 0 (dev's audited reads are events too): seq from 0,
	// without a gap or a repeat.
	var n, lo, hi int
	got := sqlOut("SELECT count() AS n, min(seq) AS lo, max(seq) AS hi FROM audit_events WHERE chain_partition = 0")
	if _, err := fmt.Sscanf(got[strings.LastIndex(got, "\n")+1:], "%d,%d,%d", &n, &lo, &hi); err != nil || lo != 0 || hi != n-1 || n < 90 {
		t.Fatalf("partition 0 after the migration: (rows, first seq, last seq) = %q; want one chain from seq 0 with every event (%v)", got, err)
	}
	pub := filepath.Join(secrets, trialsecrets.SignerPub)
	eventually(t, 60*time.Second, func() string {
		out, code := d.ctl("verify", "--store", "--clickhouse", chtest.Addr, "--database", store.Database(), "--deployment", "dev", "--verifier-key", pub)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("dev/audit.chained/0  records %d (seq 0..%d)", n, hi)) {
			return fmt.Sprintf("verify --store on the destination: exit %d\n%s", code, out)
		}
		return ""
	})
}
