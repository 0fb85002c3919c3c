package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/devlog"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// devDir builds a stopped dev data directory: 5 events on audit.events/0 of which
// the chainer committed 3, and on audit.chained/0 three chained records and a
// checkpoint, written in two transactions as the chainer does.
func devDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(filepath.Join(dir, "kafka")), kfake.SyncWrites(),
		kfake.SeedTopics(2, kafka.EventsTopic, kafka.ChainedTopic, kafka.CheckpointsTopic, kafka.DeadLetterTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("dev-chainer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(topic string, v []byte) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	skey, _, _ := chain.GenerateKey("dev")
	signer, _ := chain.NewSigner(skey)
	ch := chain.New(0)
	for i := range 3 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		rec, err := ch.Append([]byte(fmt.Sprintf(`{"i":%d}`, i)), time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rec)
		produce(kafka.ChainedTopic, b)
		if i == 2 {
			cp, _ := ch.Sign(chain.Origin("trial", kafka.ChainedTopic, 0), signer)
			b, _ := json.Marshal(cp)
			produce(kafka.CheckpointsTopic, b)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for i := range 5 {
		if err := plain.ProduceSync(ctx, &kgo.Record{Topic: kafka.EventsTopic, Partition: 0, Value: []byte(fmt.Sprintf("event-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.AddOffset(kafka.EventsTopic, 0, 3, -1)
	if _, err := kadm.NewClient(plain).CommitOffsets(ctx, "trailkeep-chainer", offs); err != nil {
		t.Fatal(err)
	}
	return dir
}

// values reads a destination partition from the start.
func values(t *testing.T, addr, topic string, p int32, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s/%d: read %d of %d records", topic, p, len(got), n)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func TestRunCopiesTheLog(t *testing.T) {
	src := devDir(t)
	dst, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	addr := dst.ListenAddrs()[0]
	res, err := Run(context.Background(), Options{DataDir: src, Brokers: []string{addr}, Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment != "trial" {
		t.Errorf("deployment %q, want the checkpoints' trial", res.Deployment)
	}
	copied := map[string]int64{}
	for _, p := range res.Partitions {
		copied[fmt.Sprintf("%s/%d", p.Topic, p.Partition)] = p.Records
	}
	for key, want := range map[string]int64{"audit.chained/0": 3, "audit.checkpoints/0": 1, "audit.events/0": 2, "audit.chained/1": 0, "audit.deadletter/0": 0} {
		if copied[key] != want {
			t.Errorf("%s: copied %d records, want %d (all: %v)", key, copied[key], want, copied)
		}
	}
	if got := values(t, addr, kafka.EventsTopic, 0, 2); strings.Join(got, ",") != "event-3,event-4" {
		t.Errorf("events copied %v, want only the unchained event-3,event-4", got)
	}
	for i, v := range values(t, addr, kafka.ChainedTopic, 0, 3) {
		var rec chain.Record
		if err := json.Unmarshal([]byte(v), &rec); err != nil || rec.Seq != uint64(i) {
			t.Errorf("chained record %d: seq %d, %v (order or content changed)", i, rec.Seq, err)
		}
	}
	n, err := kafka.PartitionCount(context.Background(), mustClient(t, addr), kafka.ChainedTopic)
	if err != nil || n != 2 {
		t.Errorf("destination %s has %d partitions (%v), want the source's 2", kafka.ChainedTopic, n, err)
	}

	// Into the same cluster again: refused, nothing added.
	_, err = Run(context.Background(), Options{DataDir: src, Brokers: []string{addr}, Replication: 1})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second copy: %v, want a refusal naming the non-empty topic", err)
	}
	if got := dst.PartitionInfo(kafka.ChainedTopic, 0).HighWatermark; got != 3 {
		t.Fatalf("after the refused copy the destination holds %d chained records, want 3", got)
	}
}

func TestRunRefuses(t *testing.T) {
	src := devDir(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (dataDir string, dst *kfake.Cluster)
		want  string
	}{
		{"another partition count", func(t *testing.T) (string, *kfake.Cluster) {
			dst, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, kafka.ChainedTopic))
			if err != nil {
				t.Fatal(err)
			}
			return src, dst
		}, "has 3 partitions, the source 2"},
		{"not a dev data directory", func(t *testing.T) (string, *kfake.Cluster) {
			dst, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			return t.TempDir(), dst
		}, "not a trailkeep dev data directory"},
		{"trailkeep dev running on it", func(t *testing.T) (string, *kfake.Cluster) {
			_, closeLog, err := devlog.OpenLog(context.Background(), src, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(closeLog)
			dst, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			return src, dst
		}, "in use by another trailkeep dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, dst := tc.setup(t)
			defer dst.Close()
			_, err := Run(context.Background(), Options{DataDir: dir, Brokers: dst.ListenAddrs(), Replication: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if hw := dst.PartitionInfo(kafka.ChainedTopic, 0); hw != nil && hw.HighWatermark != 0 {
				t.Fatalf("the refused copy wrote %d records", hw.HighWatermark)
			}
		})
	}
}

func mustClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
