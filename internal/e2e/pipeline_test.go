package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/chainer"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Ingest tokens of the end-to-end pipeline.
const (
	regTok  = "tk_e2e_registry_0000000000000000000001"
	hookTok = "tk_e2e_hooks_00000000000000000000000002"
)

// pipeline is ingest, the chainer and the ClickHouse writer on the real broker and
// server, on topics of their own.
type pipeline struct {
	broker    *kafkatest.Broker
	store     *clickhouse.Store
	url       string // ingest
	prefix    string
	events    string
	chained   string
	cps       string
	dead      string
	verifiers note.Verifiers
	// run adds a stage that runs until the test ends (the chainer and writer are
	// already running).
	run func(func(ctx context.Context) error)
}

// startPipeline starts it with the events topic in partitions partitions and a
// checkpoint every checkpointEvery records; everything stops when the test ends.
func startPipeline(t *testing.T, name string, partitions int32, checkpointEvery int) *pipeline {
	t.Helper()
	p := &pipeline{broker: kafkatest.Shared(t), store: chtest.Store(t), prefix: kafkatest.Topic(name)}
	p.events, p.chained, p.cps, p.dead = p.prefix+".events", p.prefix+".chained", p.prefix+".checkpoints", p.prefix+".deadletter"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)

	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{p.broker.Addr}, Topic: p.events})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close(context.Background()) })
	if err := kafka.EnsureTopics(ctx, prod.Client(), kafka.Topic{Name: p.events, Partitions: partitions, Replication: 1}); err != nil {
		t.Fatal(err)
	}
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
	t.Cleanup(hs.Close)
	p.url = hs.URL
	for !prod.Ready() {
		time.Sleep(50 * time.Millisecond)
	}

	skey, vkey, _ := chain.GenerateKey("e2e")
	signer, _ := chain.NewSigner(skey)
	if p.verifiers, err = chain.NewVerifiers(vkey); err != nil {
		t.Fatal(err)
	}
	ch, err := chainer.New(chainer.Config{Brokers: []string{p.broker.Addr}, Group: p.prefix + "-chainer", TransactionalID: p.prefix + "-0",
		Deployment: "e2e", InputTopic: p.events, ChainedTopic: p.chained, CheckpointTopic: p.cps, DeadLetterTopic: p.dead,
		Signer: signer, Verifiers: p.verifiers, CheckpointEvery: checkpointEvery, CheckpointInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := clickhouse.NewWriter(p.store, clickhouse.WriterConfig{Brokers: []string{p.broker.Addr}, Group: p.prefix + "-writer",
		ChainedTopic: p.chained, CheckpointTopic: p.cps, BatchRows: 1000, BatchAge: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	var running []chan error
	p.run = func(f func(ctx context.Context) error) {
		done := make(chan error, 1)
		running = append(running, done)
		go func() { done <- f(rctx) }()
	}
	t.Cleanup(func() {
		stop()
		for _, d := range running {
			<-d
		}
		ch.Close()
		w.Close()
	})
	p.run(ch.Run)
	p.run(w.Run)
	return p
}
