package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// proofBenchLeaves is the tree size of BenchmarkProof10M's partition.
const proofBenchLeaves = 10_000_000

// proofBenchStore returns a store whose partition 0 holds a tree of
// proofBenchLeaves leaves (leaf i = SHA-256 of i in decimal) and all its subtrees.
// The tree is generated server-side and kept between runs: proofs read only the
// tree tables, so no events are needed.
func proofBenchStore(b *testing.B) *clickhouse.Store {
	ctx := context.Background()
	db := fmt.Sprintf("bench_proof_%d", proofBenchLeaves)
	store := benchDB(b, db)
	last, err := store.Leaves(ctx, 0).LeafHashes(proofBenchLeaves-1, proofBenchLeaves)
	if err != nil || last[0] != benchLeaf(proofBenchLeaves-1) {
		start := time.Now()
		for _, t := range []string{"audit_leaves", "audit_subtrees"} {
			if err := store.Exec(ctx, "TRUNCATE TABLE "+db+"."+t); err != nil {
				b.Fatal(err)
			}
		}
		if err := store.Exec(ctx, "INSERT INTO "+db+".audit_leaves (chain_partition, seq, chained_at, leaf_hash) SELECT 0, number, now(), lower(hex(SHA256(toString(number)))) FROM system.numbers LIMIT "+strconv.Itoa(proofBenchLeaves)); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d leaves in %s", proofBenchLeaves, time.Since(start).Round(time.Second))
	}
	start := time.Now()
	filled, err := store.FillTree(ctx, 0, proofBenchLeaves)
	if err != nil {
		b.Fatal(err)
	}
	if filled > 0 {
		b.Logf("computed and stored %d subtrees in %s", filled, time.Since(start).Round(time.Second))
	}
	return store
}

// benchLeaf is leaf i of the benchmark tree.
func benchLeaf(i uint64) chain.Hash {
	return sha256.Sum256([]byte(strconv.FormatUint(i, 10)))
}

// benchRoots returns the roots of the benchmark tree at the given sizes (ascending),
// folded in memory: the oracle the proofs read from ClickHouse are checked against.
func benchRoots(b *testing.B, sizes []uint64) map[uint64]chain.Checkpoint {
	tb, _, err := chain.NewTreeBuilder(chain.MemoryLeaves(nil), 0)
	if err != nil {
		b.Fatal(err)
	}
	out := map[uint64]chain.Checkpoint{}
	for _, size := range sizes {
		for tb.Size() < size {
			if _, err := tb.Append(benchLeaf(tb.Size()), nil); err != nil {
				b.Fatal(err)
			}
		}
		root, err := tb.Root()
		if err != nil {
			b.Fatal(err)
		}
		out[size] = chain.Checkpoint{Origin: "bench", Size: size, Root: root}
	}
	return out
}

// BenchmarkProof10M: inclusion and consistency proofs read from ClickHouse for a
// partition of 10M leaves, at random positions and tree sizes near the end (as a
// proof against the latest checkpoint is). Reports p50/p95/max over 200 proofs of
// each kind; each proof is checked against roots folded in memory.
func BenchmarkProof10M(b *testing.B) {
	store := proofBenchStore(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(10, 10))
	sizes := []uint64{1_000, 250_000, 5_000_000}
	for range 5 {
		sizes = append(sizes, proofBenchLeaves-rng.Uint64N(10_000))
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	roots := benchRoots(b, sizes)
	latest := sizes[len(sizes)-5:]
	for _, kind := range []string{"inclusion", "consistency"} {
		b.Run(kind, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				lat = lat[:0]
				for range 200 {
					size := latest[rng.IntN(len(latest))]
					src := store.Leaves(ctx, 0)
					var err error
					start := time.Now()
					if kind == "inclusion" {
						i := rng.Uint64N(size)
						var path []chain.Hash
						path, err = chain.InclusionProof(src, i, size)
						lat = append(lat, time.Since(start))
						if err == nil {
							err = chain.VerifyInclusion(benchLeaf(i), i, roots[size], path)
						}
					} else {
						older := sizes[rng.IntN(len(sizes)-len(latest))]
						var path []chain.Hash
						path, err = chain.ConsistencyProof(src, older, size)
						lat = append(lat, time.Since(start))
						if err == nil {
							err = chain.VerifyConsistency(roots[older], roots[size], path)
						}
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}
