package archive

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
)

// chainedValues are n chained records shaped like the archive's input (~700 bytes,
// mostly the canonical event, hashes in hex): what one object holds.
func chainedValues(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"chained_at":"2026-12-07T10:00:%02d.%09dZ","event":{"action":"skill.updated","actor":{"email":"user%d@acme.example","id":"usr_%d","type":"user"},"change":{"diff_summary":"Adjusted rate limiting instructions for payments endpoints","from_version":"1.4.0","to_version":"1.5.0"},"id":"0194a1b2-c3d4-7e5f-8a9b-%012x","metadata":{"request_id":"req-%d","team":"payments"},"occurred_at":"2026-02-01T10:00:00.123456000Z","received_at":"2026-12-07T10:00:00.%09dZ","resource":{"id":"skl_%d","name":"api-conventions-%d","type":"skill"},"result":{"status":"success"},"schema_version":1,"source":{"tool":"registry"},"tenant":"acme"},"leaf_hash":"%064x","partition":0,"prev_hash":"%064x","seq":%d}`,
			i%60, i, i, i, i, i, i, i, i, uint64(i)*0x9e3779b97f4a7c15, uint64(i+1)*0xc2b2ae3d27d4eb4f, i)
	}
	return out
}

// TestEncodeObjectIsStandardGzipNDJSON: any gzip reader (the standard library's
// here, as an auditor's tools would use) reads an object back as the values, one a
// line; and the bytes depend only on the values, so a retried upload has the same
// hash.
func TestEncodeObjectIsStandardGzipNDJSON(t *testing.T) {
	for _, n := range []int{1, 7, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			values := chainedValues(n)
			body, err := EncodeObject(values)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			want := append(bytes.Join(values, []byte("\n")), '\n')
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(want))
			}
			again, err := EncodeObject(chainedValues(n))
			if err != nil || !bytes.Equal(again, body) {
				t.Fatalf("a second encoding of the same values differs (%v)", err)
			}
			recs, err := ReadObject(body)
			if err != nil || len(recs) != n {
				t.Fatalf("ReadObject: %d records, %v", len(recs), err)
			}
		})
	}
}

// BenchmarkEncodeObject is the archive's compression of one object of 20,000
// records (the S3 sink's default object), per record.
func BenchmarkEncodeObject(b *testing.B) {
	values := chainedValues(20000)
	n := 0
	for _, v := range values {
		n += len(v) + 1
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	var out int
	for b.Loop() {
		body, err := EncodeObject(values)
		if err != nil {
			b.Fatal(err)
		}
		out = len(body)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(values)), "ns/record")
	b.ReportMetric(float64(n)/float64(out), "ratio")
}
