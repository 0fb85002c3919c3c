package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/chainer"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestFixturesReachClickHouseExactlyOnce posts every Claude Code and registry fixture
// through ingest and requires each to appear exactly once in ClickHouse, with
// contiguous seq per partition, and the stored chains and checkpoints to verify.
func TestFixturesReachClickHouseExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real Kafka and ClickHouse; run without -short (make test does)")
	}
	broker := kafkatest.Shared(t)
	store := chtest.Store(t)
	prefix := kafkatest.Topic("e2e")
	topics := struct{ events, chained, cps, dead string }{prefix + ".events", prefix + ".chained", prefix + ".checkpoints", prefix + ".deadletter"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Ingest.
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{broker.Addr}, Topic: topics.events})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(ctx)
	if err := kafka.EnsureTopics(ctx, prod.Client(), kafka.Topic{Name: topics.events, Partitions: 3, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	const regTok, hookTok = "tk_e2e_registry_0000000000000000000001", "tk_e2e_hooks_00000000000000000000000002"
	tokCfg, _ := json.Marshal(map[string]any{"tokens": []map[string]any{
		{"name": "registry", "sha256": sha(regTok), "tenant": "acme-platform", "source": "registry", "scopes": []string{"events:write", "cloudevents:write"}},
		{"name": "sarah", "sha256": sha(hookTok), "tenant": "acme", "source": "claude_code", "scopes": []string{"hooks:write"}, "actor": map[string]any{"type": "user", "id": "sarah@acme.example"}},
	}})
	tokens, err := ingest.ParseTokens(tokCfg)
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.New(ingest.Options{Tokens: tokens, Publisher: prod, Redactor: red, IPKey: []byte("e2e-ip-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	for !prod.Ready() {
		time.Sleep(50 * time.Millisecond)
	}

	// Chainer and writer.
	skey, vkey, _ := chain.GenerateKey("e2e")
	signer, _ := chain.NewSigner(skey)
	verifiers, _ := chain.NewVerifiers(vkey)
	ch, err := chainer.New(chainer.Config{Brokers: []string{broker.Addr}, Group: prefix + "-chainer", TransactionalID: prefix + "-0",
		Deployment: "e2e", InputTopic: topics.events, ChainedTopic: topics.chained, CheckpointTopic: topics.cps, DeadLetterTopic: topics.dead,
		Signer: signer, Verifiers: verifiers, CheckpointEvery: 7, CheckpointInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := clickhouse.NewWriter(store, clickhouse.WriterConfig{Brokers: []string{broker.Addr}, Group: prefix + "-writer",
		ChainedTopic: topics.chained, CheckpointTopic: topics.cps, BatchRows: 1000, BatchAge: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- ch.Run(rctx) }()
	go func() { done <- w.Run(rctx) }()
	defer func() {
		stopRun()
		<-done
		<-done
		ch.Close()
		w.Close()
	}()

	post := func(path, tok, ctype string, body []byte) {
		req, _ := http.NewRequest("POST", hs.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}
	n := 0
	for _, f := range []string{"claude-code/session-basic.jsonl", "claude-code/session-mcp-subagent.jsonl", "claude-code/param-drift.jsonl"} {
		for _, l := range fixtures.Lines(t, f) {
			post("/v1/hooks/claude-code", hookTok, "application/json", l)
			n++
		}
	}
	canon := fixtures.Lines(t, "registry/canonical-events.jsonl")
	post("/v1/events", regTok, "application/x-ndjson", bytes.Join(canon, []byte("\n")))
	n += len(canon)
	ce, err := os.ReadFile(filepath.Join(fixtures.Dir(t), "registry", "cloudevents-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	post("/v1/cloudevents", regTok, "application/cloudevents-batch+json", ce)
	n += 2

	// Wait for every event in ClickHouse, and for the last checkpoints.
	deadline := time.Now().Add(90 * time.Second)
	for {
		total := 0
		covered := true
		for p := int32(0); p < 3; p++ {
			m, ok, err := store.MaxSeq(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				total += int(m) + 1
				cp, _ := store.MaxCheckpoint(ctx, p)
				covered = covered && cp == m+1
			}
		}
		if total >= n && covered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ClickHouse holds %d of %d events (checkpoints covering all: %v)", total, n, covered)
		}
		time.Sleep(200 * time.Millisecond)
	}

	ids := map[string]int{}
	total := 0
	for p := int32(0); p < 3; p++ {
		cps, err := store.Checkpoints(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		v, err := chain.NewVerifier(chain.Origin("e2e", topics.chained, p), p, verifiers, cps)
		if err != nil {
			t.Fatal(err)
		}
		err = store.Records(ctx, p, 0, func(r chain.Record) error {
			var head struct{ ID string }
			json.Unmarshal(r.Event, &head)
			ids[head.ID]++
			total++
			return v.Add(r)
		})
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		sum, err := v.Finish()
		if err != nil {
			t.Fatalf("partition %d does not verify from ClickHouse: %v", p, err)
		}
		if sum.Records > 0 && sum.Unanchored() != 0 {
			t.Errorf("partition %d: %d records not covered by a checkpoint", p, sum.Unanchored())
		}
	}
	if total != n || len(ids) != n {
		t.Fatalf("ClickHouse holds %d rows with %d distinct events, want exactly %d", total, len(ids), n)
	}
}
