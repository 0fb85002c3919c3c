package clickhouse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func TestWriterStoresVerifiableChainsExactlyOnce(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		prefix := kafkatest.Topic("store")
		chainedTopic, cpTopic := prefix+".chained", prefix+".checkpoints"
		skey, vkey, _ := chain.GenerateKey("test-store")
		signer, _ := chain.NewSigner(skey)
		verifiers, _ := chain.NewVerifiers(vkey)
		const parts, perPart = 3, 23
		origin := func(p int32) string { return chain.Origin("test", chainedTopic, p) }

		cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := kafka.EnsureTopics(ctx, cl, kafka.Topic{Name: chainedTopic, Partitions: parts, Replication: 1}, kafka.Topic{Name: cpTopic, Partitions: parts, Replication: 1}); err != nil {
			t.Fatal(err)
		}
		// Inside the hot window: the modern table drops older rows (TTL).
		base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
		for p := int32(0); p < parts; p++ {
			ch := chain.New(p)
			for i := 0; i < perPart; i++ {
				doc := map[string]any{
					"action": "skill.updated", "actor": map[string]any{"type": "user", "id": fmt.Sprintf("usr_%d", i%4)},
					"resource": map[string]any{"type": "skill", "id": fmt.Sprintf("skl_%d", i)},
					"session":  map[string]any{"id": "sess-1", "tool_use_id": fmt.Sprintf("toolu_%d", i)},
				}
				st := event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: base.Add(time.Duration(i) * time.Second)}
				if err := st.Apply(doc); err != nil {
					t.Fatal(err)
				}
				_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
				if err != nil {
					t.Fatal(err)
				}
				rec, err := ch.Append(canon, base.Add(time.Duration(i)*time.Second+123456789))
				if err != nil {
					t.Fatal(err)
				}
				val, _ := rec.MarshalJSON()
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: chainedTopic, Partition: p, Value: val}).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if ch.Size()%5 == 0 || i == perPart-1 {
					cp, err := ch.Sign(origin(p), signer)
					if err != nil {
						t.Fatal(err)
					}
					raw, _ := json.Marshal(cp)
					if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cpTopic, Partition: p, Value: raw}).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
			}
		}

		run := func(group string) *clickhouse.Writer {
			w, err := clickhouse.NewWriter(store, clickhouse.WriterConfig{Brokers: []string{broker.Addr}, Group: group,
				ChainedTopic: chainedTopic, CheckpointTopic: cpTopic, BatchRows: 10, BatchAge: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			wctx, wcancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.Run(wctx) }()
			deadline := time.Now().Add(60 * time.Second)
			for s := w.Stats(); s.Rows+s.Checkpoints+s.Skipped < parts*perPart+parts*5 && time.Now().Before(deadline); s = w.Stats() {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			wcancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			w.Close()
			return w
		}
		w1 := run(prefix + "-w1")
		if s := w1.Stats(); s.Rows != parts*perPart || s.Checkpoints != parts*5 {
			t.Fatalf("first writer: %+v", s)
		}
		// A second group re-delivers everything from the start: nothing is stored twice.
		w2 := run(prefix + "-w2")
		if s := w2.Stats(); s.Rows != 0 || s.Checkpoints != 0 || s.Skipped != parts*perPart+parts*5 {
			t.Fatalf("re-delivery stored again: %+v", s)
		}

		verify := func(p int32) error {
			cps, err := store.Checkpoints(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			v, err := chain.NewVerifier(origin(p), p, verifiers, cps)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Records(ctx, p, 0, v.Add); err != nil {
				return err
			}
			_, err = v.Finish()
			return err
		}
		for p := int32(0); p < parts; p++ {
			if err := verify(p); err != nil {
				t.Fatalf("partition %d stored in ClickHouse does not verify: %v", p, err)
			}
			if m, ok, _ := store.MaxSeq(ctx, p); !ok || m != perPart-1 {
				t.Errorf("partition %d max seq %d", p, m)
			}
		}

		// Tampering with rows is found and located: an edited event (partition 0), a
		// deleted row (partition 1), a forged extra row (partition 2).
		db := store.Database()
		mustExec := func(sql string) {
			if err := store.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		mustExec("ALTER TABLE " + db + ".audit_events UPDATE event = replaceOne(event, 'skill.updated', 'skill.deleted') WHERE chain_partition = 0 AND seq = 7")
		mustExec("ALTER TABLE " + db + ".audit_events DELETE WHERE chain_partition = 1 AND seq = 12")
		waitMutations(t, store)
		// The insert path refuses bytes that are not an event, so a forger goes around it,
		// at the SQL level: a second row at partition 2, seq 9 with an edited event.
		forged := chain.Record{Partition: 2, Seq: 9, ChainedAt: base, Event: []byte(`{"forged":true}`)}
		forged.LeafHash = forged.ComputeLeafHash()
		if err := store.InsertRecords(ctx, []chain.Record{forged}); err == nil {
			t.Fatal("InsertRecords stored bytes that are not a canonical event")
		}
		mustExec(fmt.Sprintf("INSERT INTO %s.audit_events (tenant, chain_partition, seq, chained_at, chained_at_ns, occurred_at, received_at, event_id, prev_hash, leaf_hash, event) SELECT tenant, chain_partition, seq, chained_at, chained_at_ns, occurred_at, received_at, 'forged', prev_hash, leaf_hash, replaceOne(event, 'usr_1', 'usr_9') FROM %s.audit_events WHERE chain_partition = 2 AND seq = 9", db, db))
		for p, want := range map[int32]string{0: "seq 7: modified", 1: "seq 12: deleted", 2: "seq 9"} {
			err := verify(p)
			var prob *chain.Problem
			if !errors.As(err, &prob) || prob.Partition != p || !strings.Contains(err.Error(), want) {
				t.Errorf("partition %d after tampering: %v, want a problem at %q", p, err, want)
			} else {
				t.Logf("partition %d: %v", p, err)
			}
		}
	})
}

func waitMutations(t *testing.T, s *clickhouse.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		n, err := s.PendingMutations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("mutations did not finish")
}

// TestDropExpiredOnLegacy: without TTL on 18.16, DropExpired removes whole day
// partitions older than the hot window and keeps newer ones and the checkpoints.
func TestDropExpiredOnLegacy(t *testing.T) {
	store := chtest.Store(t)
	ctx := context.Background()
	now := time.Now().UTC()
	ch := chain.New(0)
	var recs []chain.Record
	for i, at := range []time.Time{now.Add(-100 * 24 * time.Hour), now.Add(-89 * 24 * time.Hour), now} {
		doc := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": "u"}, "resource": map[string]any{"type": "skill", "id": fmt.Sprint(i)}}
		if err := (event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: at}).Apply(doc); err != nil {
			t.Fatal(err)
		}
		_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ch.Append(canon, at)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := store.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	dropped, err := store.DropExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(-100 * 24 * time.Hour).Format("20060102"); len(dropped) != 1 || dropped[0] != want {
		t.Fatalf("dropped %v, want only the day partition %s", dropped, want)
	}
	var seqs []uint64
	if err := store.Records(ctx, 0, 0, func(r chain.Record) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
		t.Errorf("rows left after retention: seq %v, want [1 2]", seqs)
	}
}

// TestAnInsertOfManyBlocksIsOnePart: the writer sends an insert as blocks of at most
// 8192 rows (so its buffers stay small); the server must still write one part per
// insert, or a busy writer would make parts faster than MergeTree merges them.
func TestAnInsertOfManyBlocksIsOnePart(t *testing.T) {
	store := chtest.Store(t)
	log := chaintest.New(t, "blocks", 0)
	at := time.Now().UTC().Add(-time.Hour)
	for i := range 20_000 {
		log.Add(int32(i%2), "acme", at, chaintest.Doc("skill.updated", "u@acme.example", "skill", "s"))
	}
	if err := store.InsertRecords(context.Background(), log.Records); err != nil {
		t.Fatal(err)
	}
	db := store.Database()
	got := legacyTSV(t, "parts", "SELECT count(), sum(rows) FROM system.parts WHERE database = '"+db+"' AND table = 'audit_events' AND active")
	if got != "1\t20000\n" {
		t.Fatalf("one insert of 20000 rows in blocks left parts (count, rows) %q, want one part of 20000", got)
	}
}
