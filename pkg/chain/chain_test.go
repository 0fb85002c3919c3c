package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "trailkeep.test/audit.chained/3"

type keys struct {
	signer    note.Signer
	verifiers note.Verifiers
	vkey      string
}

func newKeys(t testing.TB, name string) keys {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return keys{s, v, vkey}
}

var t0 = time.Date(2026, 1, 15, 9, 23, 0, 0, time.UTC)

func testEvent(i int) []byte {
	return []byte(fmt.Sprintf(`{"action":"skill.updated","n":%d,"pad":"%s"}`, i, bytes.Repeat([]byte("x"), i%17)))
}

// build chains n events with a checkpoint every `every` records (and at n).
func build(t testing.TB, k keys, n, every int) ([]Record, []SignedCheckpoint) {
	t.Helper()
	c := New(3)
	var recs []Record
	var cps []SignedCheckpoint
	for i := range n {
		r, err := c.Append(testEvent(i), t0.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		if (i+1)%every == 0 || i == n-1 {
			cp, err := c.Sign(testOrigin, k.signer)
			if err != nil {
				t.Fatal(err)
			}
			cps = append(cps, cp)
		}
	}
	return recs, cps
}

func TestLeafHashIsRFC6962(t *testing.T) {
	prev := Hash{1, 2, 3}
	ev := []byte(`{"a":1}`)
	want := rfc6962.DefaultHasher.HashLeaf(LeafInput(7, 42, t0, prev, ev))
	got := LeafHash(7, 42, t0, prev, ev)
	if !bytes.Equal(got[:], want) {
		t.Fatalf("LeafHash %x != rfc6962 HashLeaf %x", got, want)
	}
}

// The leaf encoding is a published format: this vector pins it. Changing it
// requires a new LeafVersion.
func TestLeafEncodingV1Vector(t *testing.T) {
	in := LeafInput(1, 2, time.Unix(0, 3).UTC(), Hash{0xaa}, []byte("{}"))
	wantIn := "01" + "00000001" + "0000000000000002" + "0000000000000003" +
		"aa00000000000000000000000000000000000000000000000000000000000000" + "00000002" + "7b7d"
	if fmt.Sprintf("%x", in) != wantIn {
		t.Fatalf("leaf_input\n got %x\nwant %s", in, wantIn)
	}
	// Computed independently: Python hashlib.sha256(b"\x00" + leaf_input).
	const want = "56ebb6514f5008c3eccf92489e114e04b96a17833f1cccfe5db3b31f972fa039"
	if h := LeafHash(1, 2, time.Unix(0, 3), Hash{0xaa}, []byte("{}")); h.String() != want {
		t.Fatalf("leaf hash %s, want %s", h, want)
	}
}

func TestDeterministic(t *testing.T) {
	k := newKeys(t, "det")
	a, acp := build(t, k, 300, 64)
	b, bcp := build(t, k, 300, 64)
	for i := range a {
		ja, _ := json.Marshal(a[i])
		jb, _ := json.Marshal(b[i])
		if !bytes.Equal(ja, jb) {
			t.Fatalf("record %d differs:\n%s\n%s", i, ja, jb)
		}
	}
	for i := range acp {
		if !bytes.Equal(acp[i].Note, bcp[i].Note) {
			t.Fatalf("checkpoint %d differs", i)
		}
	}
}

func TestProofsAllSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := New(0)
	var leaves MemoryLeaves
	var roots []Hash
	for n := 1; n <= 1000; n++ {
		r, err := c.Append(testEvent(n), t0)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, r.LeafHash)
		roots = append(roots, c.Root())
		size := uint64(n)
		cp := Checkpoint{Origin: testOrigin, Size: size, Root: c.Root()}
		for _, idx := range []uint64{0, size - 1, size / 2, rng.Uint64N(size)} {
			p, err := InclusionProof(leaves, idx, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(leaves[idx], idx, cp, p); err != nil {
				t.Fatalf("size %d index %d: %v", size, idx, err)
			}
			other := leaves[(idx+1)%size]
			if size > 1 && VerifyInclusion(other, idx, cp, p) == nil {
				t.Fatalf("size %d index %d: proof accepted the wrong leaf", size, idx)
			}
		}
		for _, m := range []uint64{1, size, rng.Uint64N(size) + 1} {
			p, err := ConsistencyProof(leaves, m, size)
			if err != nil {
				t.Fatal(err)
			}
			older := Checkpoint{Origin: testOrigin, Size: m, Root: roots[m-1]}
			if err := VerifyConsistency(older, cp, p); err != nil {
				t.Fatalf("consistency %d->%d: %v", m, size, err)
			}
			if m < size && m > 1 {
				forged := older
				forged.Root[0] ^= 1
				if VerifyConsistency(forged, cp, p) == nil {
					t.Fatalf("consistency %d->%d accepted a forged root", m, size)
				}
			}
		}
	}
}

func TestRestoreFromTail(t *testing.T) {
	k := newKeys(t, "restore")
	recs, cps := build(t, k, 1000, 97)
	full := New(3)
	for _, r := range recs {
		if _, err := full.Append(r.Event, r.ChainedAt); err != nil {
			t.Fatal(err)
		}
	}
	next, _ := full.Append([]byte(`{"next":true}`), t0)
	for i := range cps {
		cp := cps[i]
		parsed, _ := cp.Open(testOrigin, k.verifiers)
		c, err := Restore(testOrigin, 3, &cp, k.verifiers, recs[parsed.Size:])
		if err != nil {
			t.Fatalf("restore at checkpoint %d: %v", parsed.Size, err)
		}
		if c.Root() != recs2root(t, recs) || c.Size() != 1000 {
			t.Fatalf("restore at %d: size %d root differs", parsed.Size, c.Size())
		}
		got, _ := c.Append([]byte(`{"next":true}`), t0)
		if got.LeafHash != next.LeafHash || got.Seq != next.Seq || got.PrevHash != next.PrevHash {
			t.Fatalf("restore at %d: next append differs", parsed.Size)
		}
	}
	// No checkpoint yet: restore from every record.
	c, err := Restore(testOrigin, 3, nil, k.verifiers, recs)
	if err != nil || c.Root() != recs2root(t, recs) {
		t.Fatalf("restore without checkpoint: %v", err)
	}
	// Restore refuses a bad tail, a foreign key and a forged range.
	cp := cps[3]
	parsed, _ := cp.Open(testOrigin, k.verifiers)
	tail := append([]Record(nil), recs[parsed.Size:]...)
	tail[5].Event = []byte(`{"forged":1}`)
	if _, err := Restore(testOrigin, 3, &cp, k.verifiers, tail); err == nil {
		t.Fatal("restore accepted a modified record")
	}
	if _, err := Restore(testOrigin, 3, &cp, newKeys(t, "other").verifiers, recs[parsed.Size:]); err == nil {
		t.Fatal("restore accepted an unknown key")
	}
	bad := cp
	bad.Range = append([]Hash(nil), cp.Range...)
	bad.Range[0][0] ^= 1
	if _, err := Restore(testOrigin, 3, &bad, k.verifiers, recs[parsed.Size:]); err == nil {
		t.Fatal("restore accepted a range that does not fold to the signed root")
	}
	if _, err := Restore("other/origin/3", 3, &cp, k.verifiers, recs[parsed.Size:]); !errors.Is(err, ErrOrigin) {
		t.Fatalf("restore with wrong origin: %v", err)
	}
}

func recs2root(t testing.TB, recs []Record) Hash {
	c := New(3)
	for _, r := range recs {
		c.Append(r.Event, r.ChainedAt)
	}
	return c.Root()
}

func TestRecordJSONRoundTrip(t *testing.T) {
	k := newKeys(t, "json")
	recs, cps := build(t, k, 40, 10)
	var back []Record
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var r2 Record
		if err := json.Unmarshal(b, &r2); err != nil {
			t.Fatal(err)
		}
		back = append(back, r2)
	}
	cb, _ := json.Marshal(cps)
	var cps2 []SignedCheckpoint
	if err := json.Unmarshal(cb, &cps2); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(testOrigin, 3, k.verifiers, back, cps2); err != nil {
		t.Fatalf("after JSON round trip: %v", err)
	}
	var r Record
	if err := json.Unmarshal([]byte(`{"partition":0,"seq":1}`), &r); err == nil {
		t.Fatal("accepted a record without hashes")
	}
}

func TestVerifierKeyFromSignerKey(t *testing.T) {
	skey, vkey, err := GenerateKey("derive")
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifierKey(skey)
	if err != nil || got != vkey {
		t.Fatalf("VerifierKey = %q, %v; want %q", got, err, vkey)
	}
	if _, err := VerifierKey(vkey); err == nil {
		t.Fatal("accepted a public key as a signer key")
	}
}
