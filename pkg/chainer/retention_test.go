package chainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// checkpointRecords returns partition p's checkpoint records as stored.
func (e *env) checkpointRecords(t *testing.T, ctx context.Context, p int32) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	if err := e.tailAll(ctx, e.topic("checkpoints"), p, func(r *kgo.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// trimTo deletes partition p of topic before offset at (−1: its end), as
// retention does.
func (e *env) trimTo(t *testing.T, ctx context.Context, topic string, p int32, at int64) {
	t.Helper()
	if at < 0 {
		at = e.end(t, ctx, topic, p)
	}
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: topic, Partition: p, At: at})
	resp, err := kadm.NewClient(e.cl).DeleteRecords(ctx, o)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records of %s: %v", topic, err)
	}
}

// TestQuietPartitionOutlivesRetention: a partition goes quiet after a few
// events and a dead letter. The chainer re-publishes its checkpoint (same
// note, the input offset it now accounts for, a fresh timestamp); retention
// then deletes every chained record and every checkpoint but the newest. A new
// instance restores the partition from that checkpoint alone and continues
// the same chain: the whole log, old records included, verifies.
func TestQuietPartitionOutlivesRetention(t *testing.T) {
	e := newEnv(t, 1)
	// The events were chained a month ago, so a re-publication that took
	// their time instead of the clock would be deleted by retention at once.
	e.produced = time.Now().Add(-30 * 24 * time.Hour)
	want := e.produceEvents(t, 0, 5)
	e.produced = time.Time{}
	e.produceRaw(t, 0, `{"not":"an event"}`)
	cfg := e.config("a")
	cfg.CheckpointRefresh = time.Second
	c, stop := e.startConfig(t, cfg)
	waitFor(t, "5 events chained", func() bool { return c.Stats().Chained == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, "a re-published checkpoint that accounts for the dead letter", func() bool {
		// Two at offset 6: one accounts for the dead letter (or is the first),
		// and one is a re-publication on the refresh clock.
		n := 0
		for _, r := range e.checkpointRecords(t, ctx, 0) {
			if header(r, inputOffsetHeader) == "6" && time.Since(r.Timestamp) < 10*time.Second {
				n++
			}
		}
		return n >= 2
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	before, _, _ := e.read(t, 0)
	cps := e.checkpointRecords(t, ctx, 0)
	for _, r := range cps[1:] {
		if !bytes.Equal(r.Value, cps[0].Value) || header(r, "size") != "5" {
			t.Fatalf("a re-published checkpoint differs from the first at size 5 (the archive would see a conflict):\n%s\n%s", cps[0].Value, r.Value)
		}
	}

	e.trimTo(t, ctx, e.topic("chained"), 0, -1)
	e.trimTo(t, ctx, e.topic("checkpoints"), 0, cps[len(cps)-1].Offset)
	want = append(want, e.produceEvents(t, 0, 3)...)
	c2, stop2 := e.start(t, "b")
	waitFor(t, "3 more events chained", func() bool { return c2.Stats().Chained == 3 })
	waitFor(t, "the checkpoint at 8", func() bool {
		rs := e.checkpointRecords(t, ctx, 0)
		return header(rs[len(rs)-1], "size") == "8"
	})
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	after, cpsAfter, _ := e.read(t, 0)
	all := append(before, after...)
	var signed []chain.SignedCheckpoint
	for _, r := range cps {
		var sc chain.SignedCheckpoint
		if err := json.Unmarshal(r.Value, &sc); err != nil {
			t.Fatal(err)
		}
		signed = append(signed, sc)
	}
	signed = append(signed, cpsAfter...)
	if _, err := chain.Verify(chain.Origin("test", e.topic("chained"), 0), 0, e.verifiers, all, signed); err != nil {
		t.Fatalf("the continued log does not verify: %v", err)
	}
	if len(all) != len(want) || all[5].Seq != 5 {
		t.Fatalf("%d records, want %d", len(all), len(want))
	}
}

// TestTrimmedTailAfterCheckpointRefused: records chained after the last
// checkpoint are deleted with the rest. The group's committed offset is past
// what the checkpoint accounts for, so restore must not continue from the
// checkpoint (that would fork seq 3 and 4): it refuses with a TrimmedError
// that names both offsets.
func TestTrimmedTailAfterCheckpointRefused(t *testing.T) {
	e := newEnv(t, 1)
	e.produceEvents(t, 0, 5)
	cfg := e.config("a")
	cfg.CheckpointEvery, cfg.CheckpointInterval = 3, time.Hour
	c, stop := e.startConfig(t, cfg)
	waitFor(t, "5 events chained", func() bool { return c.Stats().Chained == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if rs := e.checkpointRecords(t, ctx, 0); len(rs) != 1 || header(rs[0], inputOffsetHeader) != "3" {
		t.Fatalf("want one checkpoint accounting for input up to 3, have %d", len(rs))
	}
	e.trimTo(t, ctx, e.topic("chained"), 0, -1)
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.restore(ctx, 0)
	var te *TrimmedError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "committed input offset 5") || !strings.Contains(err.Error(), strconv.Itoa(3)) {
		t.Fatalf("restore = %v, %v; want a TrimmedError naming offsets 5 and 3", st, err)
	}
}

// TestRefreshCheckedAgainstRetention: start-up refuses a refresh that retention
// on the checkpoint topic would outrun, and takes one well inside it.
func TestRefreshCheckedAgainstRetention(t *testing.T) {
	e := newEnv(t, 1)
	hour := "3600000"
	for _, tc := range []struct {
		name    string
		refresh time.Duration
		wantErr bool
	}{
		{"the default day against an hour", 0, true},
		{"31 minutes against an hour", 31 * time.Minute, true},
		{"20 minutes against an hour", 20 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.config("refresh")
			cfg.TopicConfigs = map[string]*string{"retention.ms": &hour}
			cfg.CheckpointRefresh = tc.refresh
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = c.EnsureTopics(ctx)
			if got := errors.Is(err, ErrConfig); got != tc.wantErr || (!tc.wantErr && err != nil) {
				t.Fatalf("EnsureTopics = %v, want a configuration error: %v", err, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(err.Error(), "retention.ms") {
				t.Fatalf("the error does not name what to change: %v", err)
			}
		})
	}
}

// TestLegacyCheckpointGetsItsProof: a partition whose last checkpoint predates
// last_leaf_proof (and input_offset) is restored from it and its records, and
// the checkpoints signed from then on carry the proof, so the partition can
// later outlive retention too. A legacy checkpoint whose last leaf hash does not
// match its records is refused.
func TestLegacyCheckpointGetsItsProof(t *testing.T) {
	e := newEnv(t, 1)
	e.produceEvents(t, 0, 12)
	c, stop := e.start(t, "a")
	waitFor(t, "12 events chained", func() bool { return c.Stats().Chained == 12 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, "the checkpoint at 12", func() bool {
		rs := e.checkpointRecords(t, ctx, 0)
		return len(rs) > 0 && header(rs[len(rs)-1], "size") == "12"
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rs := e.checkpointRecords(t, ctx, 0)
	var cp chain.SignedCheckpoint
	if err := json.Unmarshal(rs[len(rs)-1].Value, &cp); err != nil || len(cp.LastLeafProof) != 2 {
		t.Fatalf("checkpoint at 12: proof %d hashes, %v", len(cp.LastLeafProof), err)
	}
	restoreWith := func(t *testing.T, legacy chain.SignedCheckpoint) (*partitionState, error) {
		t.Helper()
		val, err := json.Marshal(legacy)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.cl.ProduceSync(ctx, &kgo.Record{Topic: e.topic("checkpoints"), Partition: 0, Value: val,
			Headers: []kgo.RecordHeader{{Key: "size", Value: []byte("12")}}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		r, err := New(e.config("restore"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return r.restore(ctx, 0)
	}
	legacy := cp
	legacy.LastLeafProof = nil
	st, err := restoreWith(t, legacy)
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.ch.Sign(chain.Origin("test", e.topic("chained"), 0), e.signer)
	if err != nil || string(again.Note) != string(cp.Note) || len(again.LastLeafProof) != 2 || again.LastLeafProof[1] != cp.LastLeafProof[1] {
		t.Fatalf("the checkpoint signed after restoring from a legacy one: %d proof hashes, %v", len(again.LastLeafProof), err)
	}
	if st.cpNext != -1 || !st.dirty() {
		t.Fatalf("a legacy checkpoint accounts for no input offset: cpNext %d, dirty %v", st.cpNext, st.dirty())
	}
	forged := legacy
	forged.LastLeaf[0] ^= 1
	if _, err := restoreWith(t, forged); err == nil || !strings.Contains(err.Error(), "does not match its records") {
		t.Fatalf("restore from a legacy checkpoint with a forged last leaf: %v", err)
	}
}
