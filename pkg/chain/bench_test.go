package chain

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func benchEvent(size int) []byte {
	return append(append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), size-10)...), `"}`...)
}

// BenchmarkAppend: leaf hash + Merkle compact-range update per record.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{256, 1024} {
		b.Run(fmt.Sprintf("event=%dB", size), func(b *testing.B) {
			ev := benchEvent(size)
			c := New(0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Append(ev, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify: per-record cost of walking a checkpointed log.
func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{256, 1024} {
		b.Run(fmt.Sprintf("event=%dB", size), func(b *testing.B) {
			k := newKeys(b, "bench")
			ev := benchEvent(size)
			const n = 1 << 16
			c := New(3)
			recs := make([]Record, n)
			var cps []SignedCheckpoint
			for i := range recs {
				recs[i], _ = c.Append(ev, t0.Add(time.Duration(i)))
				if (i+1)%1000 == 0 {
					cp, _ := c.Sign(testOrigin, k.signer)
					cps = append(cps, cp)
				}
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; {
				v, err := NewVerifier(testOrigin, 3, k.verifiers, cps)
				if err != nil {
					b.Fatal(err)
				}
				for j := 0; j < n && i < b.N; j, i = j+1, i+1 {
					if err := v.Add(recs[j]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func benchLeaves(n int) MemoryLeaves {
	c := New(0)
	ev := benchEvent(64)
	leaves := make(MemoryLeaves, n)
	for i := range leaves {
		r, _ := c.Append(ev, t0)
		leaves[i] = r.LeafHash
	}
	return leaves
}

// BenchmarkInclusionProof generates a proof from leaf hashes alone (no
// cached interior nodes): cost grows with the tree size.
func BenchmarkInclusionProof(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 16, 1 << 20} {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			leaves := benchLeaves(n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := InclusionProof(leaves, uint64(i*7919%n), uint64(n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyInclusion(b *testing.B) {
	const n = 1 << 20
	leaves := benchLeaves(n)
	c := New(0)
	ev := benchEvent(64)
	for range n {
		c.Append(ev, t0)
	}
	cp := Checkpoint{Origin: testOrigin, Size: n, Root: c.Root()}
	p, err := InclusionProof(leaves, 12345, n)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyInclusion(leaves[12345], 12345, cp, p); err != nil {
			b.Fatal(err)
		}
	}
}
