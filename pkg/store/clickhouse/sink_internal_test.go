package clickhouse

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sink"
)

// TestAdmit holds the writer's idempotence and no-hole rules over batches that
// overlap what is stored, start a fresh partition, skip a seq or carry a record of
// another partition.
func TestAdmit(t *testing.T) {
	batch := func(p int32, seqs ...uint64) *sink.Batch {
		b := &sink.Batch{Partition: p}
		for i, s := range seqs {
			b.Records = append(b.Records, sink.Record{Offset: int64(100 + i), Chain: chain.Record{Partition: p, Seq: s}})
		}
		return b
	}
	cases := []struct {
		name    string
		b       *sink.Batch
		top     int64
		keep    []int
		skipped int
		err     string // substring; "" for none
		gap     bool
	}{
		{"fresh partition from 0", batch(0, 0, 1, 2), -1, []int{0, 1, 2}, 0, "", false},
		{"fresh partition mid-chain (older rows expired)", batch(0, 7, 8), -1, []int{0, 1}, 0, "", false},
		{"continues what is stored", batch(0, 5, 6), 4, []int{0, 1}, 0, "", false},
		{"re-delivery of stored rows", batch(0, 3, 4), 4, nil, 2, "", false},
		{"overlap: stored prefix skipped", batch(0, 3, 4, 5, 6), 4, []int{2, 3}, 2, "", false},
		{"gap after what is stored", batch(0, 6), 4, nil, 0, "ClickHouse holds up to seq 4, audit.chained offset 100 has seq 6", true},
		{"gap inside the batch", batch(0, 5, 7), 4, nil, 0, "offset 101 has seq 7", true},
		{"gap inside a fresh partition's batch", batch(0, 0, 2), -1, nil, 0, "holds up to seq 0", true},
		{"record of another partition", &sink.Batch{Partition: 1, Records: []sink.Record{{Offset: 9, Chain: chain.Record{Partition: 2, Seq: 0}}}}, -1, nil, 0, "partition 1 offset 9 holds a record of partition 2", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keep, skipped, err := admit(c.b, c.top)
			if c.err != "" {
				var se *sink.Error
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &se) || se.Kind != sink.Fatal || errors.Is(err, ErrGap) != c.gap {
					t.Fatalf("admit: %v, want a Fatal error containing %q (ErrGap %v)", err, c.err, c.gap)
				}
				return
			}
			if err != nil || skipped != c.skipped || !equalInts(keep, c.keep) {
				t.Fatalf("admit: keep %v skipped %d err %v, want keep %v skipped %d", keep, skipped, err, c.keep, c.skipped)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBlocks: an insert's chunks re-cut into blocks keep every row once, in order,
// and no block exceeds the limit.
func TestBlocks(t *testing.T) {
	mk := func(p uint32, n int) []eventRow {
		rows := make([]eventRow, n)
		for i := range rows {
			rows[i] = eventRow{Partition: p, Seq: uint64(i)}
		}
		return rows
	}
	cases := []struct {
		name   string
		chunks [][]eventRow
		max    int
		sizes  []int
	}{
		{"none", nil, 4, nil},
		{"one small", [][]eventRow{mk(0, 3)}, 4, []int{3}},
		{"exact", [][]eventRow{mk(0, 8)}, 4, []int{4, 4}},
		{"across chunks", [][]eventRow{mk(0, 3), mk(1, 3), mk(2, 3)}, 4, []int{4, 4, 1}},
		{"empty chunk", [][]eventRow{mk(0, 2), nil, mk(1, 2)}, 4, []int{4}},
		{"large", [][]eventRow{mk(0, 10), mk(1, 1)}, 3, []int{3, 3, 3, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sizes []int
			var got []eventRow
			for blk := range blocks(c.chunks, c.max) {
				n := 0
				for _, rows := range blk {
					n += len(rows)
					got = append(got, rows...)
				}
				sizes = append(sizes, n)
			}
			var want []eventRow
			for _, rows := range c.chunks {
				want = append(want, rows...)
			}
			if !slices.Equal(sizes, c.sizes) || len(got) != len(want) {
				t.Fatalf("block sizes %v (%d rows), want %v (%d rows)", sizes, len(got), c.sizes, len(want))
			}
			for i := range got {
				if got[i].Partition != want[i].Partition || got[i].Seq != want[i].Seq {
					t.Fatalf("row %d is %d/%d, want %d/%d", i, got[i].Partition, got[i].Seq, want[i].Partition, want[i].Seq)
				}
			}
		})
	}
}
