package devlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

const sealTopic = "audit.chained"

// crashedBroker runs a persisted broker, lets setup write to it, copies its data
// directory while it runs (what a SIGKILL leaves on disk, every batch fsynced),
// and returns a broker started on the copy.
func crashedBroker(t *testing.T, setup func(addr string)) *kfake.Cluster {
	t.Helper()
	live := filepath.Join(t.TempDir(), "live")
	c1, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(live), kfake.SyncWrites(), kfake.SeedTopics(1, sealTopic))
	if err != nil {
		t.Fatal(err)
	}
	setup(c1.ListenAddrs()[0])
	crashed := filepath.Join(t.TempDir(), "crashed")
	if err := os.CopyFS(crashed, os.DirFS(live)); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(crashed), kfake.SyncWrites())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close)
	return c2
}

// txn produces values in one transaction and commits it, or leaves it open.
func txn(t *testing.T, addr string, commit bool, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("chainer-0"), kgo.DefaultProduceTopic(sealTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
}

// committed reads the topic read_committed from the start to its last stable
// offset, as the chainer's restore and every consumer of audit.chained do, and
// fails if the reader stops short of it.
func committed(t *testing.T, addr string, lso int64) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{sealTopic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for next := int64(0); next < lso; {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			next = r.Offset + 1
			if !r.Attrs.IsControl() {
				got = append(got, string(r.Value))
			}
		})
		if n == 0 {
			t.Fatalf("a read_committed reader got nothing past offset %d of %d (read %q): the tail has no transaction marker", next, lso, got)
		}
	}
	return got
}

func TestCrashedTransactionsAreSealed(t *testing.T) {
	openAtCrash := func(addr string) {
		txn(t, addr, true, "a1", "a2")
		txn(t, addr, false, "b1", "b2") // open when the process dies
	}
	for _, tc := range []struct {
		name   string
		setup  func(addr string)
		after  []string // committed by the restarted producer
		sealed int
		want   []string
	}{
		{"nothing written after the crash", openAtCrash, nil, 1, []string{"a1", "a2"}},
		{"the restarted producer commits", openAtCrash, []string{"c1", "c2", "c3"}, 1, []string{"a1", "a2", "c1", "c2", "c3"}},
		{"no transaction open at the crash", func(addr string) { txn(t, addr, true, "a1") }, []string{"c1"}, 0, []string{"a1", "c1"}},
		{"only an open transaction", func(addr string) { txn(t, addr, false, "b1") }, []string{"c1"}, 1, []string{"c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker := crashedBroker(t, tc.setup)
			addr := broker.ListenAddrs()[0]
			sealed, err := sealCrashedTransactions(context.Background(), broker, []string{sealTopic, "absent"})
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != tc.sealed || (tc.sealed == 1 && sealed[0] != sealTopic+"/0") {
				t.Fatalf("sealed %v, want %d partition(s) of %s", sealed, tc.sealed, sealTopic)
			}
			if len(tc.after) > 0 {
				txn(t, addr, true, tc.after...)
			}
			pi := broker.PartitionInfo(sealTopic, 0)
			if got := committed(t, addr, pi.LastStableOffset); !slices.Equal(got, tc.want) {
				t.Fatalf("read_committed after the crash got %q, want %q", got, tc.want)
			}
			// Sealing again finds nothing: a clean tail is left alone.
			if again, err := sealCrashedTransactions(context.Background(), broker, []string{sealTopic}); err != nil || len(again) != 0 {
				t.Fatalf("second seal: %v, %v; want nothing sealed", again, err)
			}
		})
	}
}

// A transaction left open by a clean shutdown is the broker's to resolve (it
// restores it as open): sealing must not add a second marker behind its back.
func TestOpenTransactionOfACleanShutdownIsLeftAlone(t *testing.T) {
	dir := t.TempDir()
	c1, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SyncWrites(), kfake.SeedTopics(1, sealTopic))
	if err != nil {
		t.Fatal(err)
	}
	txn(t, c1.ListenAddrs()[0], true, "a1")
	txn(t, c1.ListenAddrs()[0], false, "b1")
	c1.Close()
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SyncWrites())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	pi := c2.PartitionInfo(sealTopic, 0)
	if pi.LastStableOffset >= pi.HighWatermark {
		t.Fatalf("after a clean shutdown the open transaction is not tracked (LSO %d, end %d); this test no longer probes what it should", pi.LastStableOffset, pi.HighWatermark)
	}
	sealed, err := sealCrashedTransactions(context.Background(), c2, []string{sealTopic})
	if err != nil || len(sealed) != 0 {
		t.Fatalf("sealed %v, %v; want nothing", sealed, err)
	}
}

// The chainer's offset on audit.events is moved past inputs whose chained records
// or dead letters are committed — the state a kill between kfake's commit markers
// and its transactional offset commit leaves — and left alone when it is right.
func TestChainerResumesAfterWhatItChained(t *testing.T) {
	for _, tc := range []struct {
		name      string
		chained   int  // inputs 0..chained-1 have chained records
		dead      bool // input `chained` has a dead letter
		committed int64
		want      string
	}{
		{"offset lost after the markers", 3, false, 1, "audit.events/0: 1 -> 3"},
		{"a dead letter is last", 3, true, 1, "audit.events/0: 1 -> 4"},
		{"no offset committed at all", 2, false, -1, "audit.events/0: 0 -> 2"},
		{"offset right", 3, false, 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, kafka.EventsTopic, kafka.ChainedTopic, kafka.DeadLetterTopic))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			plain, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(kafka.EventsTopic))
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			var inputs [][]byte
			for i := range 5 {
				v := []byte(fmt.Sprintf(`{"id":"ev-%d"}`, i))
				inputs = append(inputs, v)
				if err := plain.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			tx, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("chainer-0"))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if err := tx.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			ch := chain.New(0)
			for i := range tc.chained {
				rec, err := ch.Append(inputs[i], time.Unix(1700000000, 0))
				if err != nil {
					t.Fatal(err)
				}
				b, err := rec.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.ProduceSync(ctx, &kgo.Record{Topic: kafka.ChainedTopic, Value: b}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dead {
				src := fmt.Sprintf("%s/0@%d", kafka.EventsTopic, tc.chained)
				if err := tx.ProduceSync(ctx, &kgo.Record{Topic: kafka.DeadLetterTopic, Value: inputs[tc.chained],
					Headers: []kgo.RecordHeader{{Key: "source", Value: []byte(src)}}}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
			adm := kadm.NewClient(plain)
			if tc.committed >= 0 {
				offs := kadm.Offsets{}
				offs.AddOffset(kafka.EventsTopic, 0, tc.committed, -1)
				if _, err := adm.CommitOffsets(ctx, ChainerGroup, offs); err != nil {
					t.Fatal(err)
				}
			}
			moved, err := resumeChainer(ctx, c, ChainerGroup)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(moved, ","); got != tc.want {
				t.Fatalf("moved %q, want %q", got, tc.want)
			}
			if tc.want == "" {
				return
			}
			offs, err := adm.FetchOffsets(ctx, ChainerGroup)
			if err != nil {
				t.Fatal(err)
			}
			o, _ := offs.Lookup(kafka.EventsTopic, 0)
			if want := tc.want[strings.LastIndex(tc.want, " ")+1:]; fmt.Sprint(o.At) != want {
				t.Fatalf("the group's committed offset is %d, want %s", o.At, want)
			}
		})
	}
}
