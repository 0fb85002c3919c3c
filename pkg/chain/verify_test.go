package chain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func expectProblem(t *testing.T, err error, kind ProblemKind, seq, last uint64) {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("want %s at %d..%d, got %v", kind, seq, last, err)
	}
	if p.Kind != kind || p.Seq != seq || p.LastSeq != last || p.Partition != 3 {
		t.Fatalf("want %s at 3/%d..%d, got %v", kind, seq, last, p)
	}
}

// rechain rewrites records from index i on with valid hashes and links, as
// an attacker with write access but without the signing key could.
func rechain(recs []Record, i int) {
	for j := i; j < len(recs); j++ {
		if j > 0 {
			recs[j].PrevHash = recs[j-1].LeafHash
		}
		recs[j].LeafHash = recs[j].ComputeLeafHash()
	}
}

func TestVerifyDetectsAndLocatesTampering(t *testing.T) {
	k := newKeys(t, "tamper")
	orig, cps := build(t, k, 50, 10) // checkpoints at 10, 20, 30, 40, 50
	clone := func() []Record { return slices.Clone(orig) }

	if s, err := Verify(testOrigin, 3, k.verifiers, orig, cps); err != nil || s.Records != 50 || s.Checkpoints != 5 || s.Unanchored() != 0 {
		t.Fatalf("clean log: %+v %v", s, err)
	}

	cases := []struct {
		name      string
		tamper    func([]Record) []Record
		kind      ProblemKind
		seq, last uint64
	}{
		{"modified event", func(r []Record) []Record {
			r[13].Event = []byte(`{"action":"skill.deleted"}`)
			return r
		}, Modified, 13, 13},
		{"modified time", func(r []Record) []Record { r[13].ChainedAt = r[13].ChainedAt.Add(1); return r }, Modified, 13, 13},
		{"modified and re-hashed", func(r []Record) []Record {
			r[13].Event = []byte(`{"x":1}`)
			r[13].LeafHash = r[13].ComputeLeafHash()
			return r
		}, BrokenLink, 14, 14},
		{"suffix rewritten", func(r []Record) []Record {
			r[13].Event = []byte(`{"x":1}`)
			rechain(r, 13)
			return r
		}, RootMismatch, 10, 19},
		{"deleted middle", func(r []Record) []Record { return slices.Delete(r, 13, 14) }, Deleted, 13, 13},
		{"deleted run", func(r []Record) []Record { return slices.Delete(r, 13, 17) }, Deleted, 13, 16},
		{"deleted tail", func(r []Record) []Record { return r[:47] }, Deleted, 47, 49},
		{"deleted and renumbered", func(r []Record) []Record {
			r = slices.Delete(r, 13, 14)
			for i := 13; i < len(r); i++ {
				r[i].Seq--
			}
			rechain(r, 13)
			return r
		}, RootMismatch, 10, 19},
		{"exact duplicate", func(r []Record) []Record { return slices.Insert(r, 14, r[13]) }, Inserted, 13, 13},
		{"forged record inserted", func(r []Record) []Record {
			forged := Record{Partition: 3, Seq: 14, ChainedAt: r[14].ChainedAt, PrevHash: r[13].LeafHash, Event: []byte(`{"forged":true}`)}
			forged.LeafHash = forged.ComputeLeafHash()
			return slices.Insert(r, 14, forged)
		}, Inserted, 14, 14},
		{"reordered", func(r []Record) []Record { r[13], r[14] = r[14], r[13]; return r }, Reordered, 13, 13},
		{"other partition", func(r []Record) []Record { r[13].Partition = 4; return r }, Inserted, 13, 13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(testOrigin, 3, k.verifiers, c.tamper(clone()), cps)
			expectProblem(t, err, c.kind, c.seq, c.last)
		})
	}
}

func TestVerifyCheckpointProblems(t *testing.T) {
	k := newKeys(t, "cp")
	recs, cps := build(t, k, 50, 10)

	t.Run("unknown key", func(t *testing.T) {
		other := newKeys(t, "cp") // same name, different key
		forged := slices.Clone(cps)
		c := New(3)
		for _, r := range recs[:20] {
			c.Append(r.Event, r.ChainedAt)
		}
		forged[1], _ = c.Sign(testOrigin, other.signer)
		_, err := Verify(testOrigin, 3, k.verifiers, recs, forged)
		expectProblem(t, err, BadSignature, 19, 19)
	})
	t.Run("edited note", func(t *testing.T) {
		forged := slices.Clone(cps)
		n := slices.Clone(forged[2].Note)
		n[len(testOrigin)+1] = '9' // "30" -> "90"
		forged[2].Note = n
		_, err := Verify(testOrigin, 3, k.verifiers, recs, forged)
		var p *Problem
		if !errors.As(err, &p) || p.Kind != BadSignature {
			t.Fatalf("want bad signature, got %v", err)
		}
	})
	t.Run("fork", func(t *testing.T) {
		alt := New(3)
		for i, r := range recs[:20] {
			ev := r.Event
			if i == 5 {
				ev = []byte(`{"other":"history"}`)
			}
			alt.Append(ev, r.ChainedAt)
		}
		fork, _ := alt.Sign(testOrigin, k.signer)
		for _, order := range [][]SignedCheckpoint{append(slices.Clone(cps), fork), append([]SignedCheckpoint{fork}, cps...)} {
			_, err := Verify(testOrigin, 3, k.verifiers, recs, order)
			expectProblem(t, err, Inconsistent, 19, 19)
		}
	})
	t.Run("wrong origin", func(t *testing.T) {
		_, err := Verify("elsewhere/audit.chained/3", 3, k.verifiers, recs, cps)
		expectProblem(t, err, BadSignature, 9, 9)
	})
	t.Run("unanchored tail", func(t *testing.T) {
		s, err := Verify(testOrigin, 3, k.verifiers, recs, cps[:4])
		if err != nil || s.AnchoredSize != 40 || s.Unanchored() != 10 {
			t.Fatalf("%+v %v", s, err)
		}
	})
	t.Run("key rotation", func(t *testing.T) {
		newKey := newKeys(t, "cp-2027")
		c := New(3)
		var mixed []SignedCheckpoint
		for i, r := range recs {
			c.Append(r.Event, r.ChainedAt)
			if (i+1)%10 == 0 {
				s := k.signer
				if i >= 25 {
					s = newKey.signer
				}
				cp, _ := c.Sign(testOrigin, s)
				mixed = append(mixed, cp)
			}
		}
		both, err := NewVerifiers(k.vkey, newKey.vkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(testOrigin, 3, both, recs, mixed); err != nil {
			t.Fatalf("old and new keys: %v", err)
		}
		_, err = Verify(testOrigin, 3, newKey.verifiers, recs, mixed)
		expectProblem(t, err, BadSignature, 9, 9)
	})
}

func TestVerifyStartAt(t *testing.T) {
	k := newKeys(t, "start")
	recs, cps := build(t, k, 50, 10)
	s, err := Verify(testOrigin, 3, k.verifiers, recs[20:], cps, StartAt(cps[1]))
	if err != nil || s.FirstSeq != 20 || s.Records != 30 || s.Checkpoints != 3 {
		t.Fatalf("%+v %v", s, err)
	}
	tampered := slices.Clone(recs[20:])
	tampered[5].Event = []byte(`{}`)
	_, err = Verify(testOrigin, 3, k.verifiers, tampered, cps, StartAt(cps[1]))
	expectProblem(t, err, Modified, 25, 25)
	// A relinked first record is caught against the start checkpoint.
	relinked := slices.Clone(recs[20:])
	relinked[0].PrevHash[0] ^= 1
	relinked[0].LeafHash = relinked[0].ComputeLeafHash()
	_, err = Verify(testOrigin, 3, k.verifiers, relinked, cps, StartAt(cps[1]))
	expectProblem(t, err, BrokenLink, 20, 20)
	if !strings.Contains(err.Error(), "start checkpoint (size 20)") {
		t.Fatalf("message: %v", err)
	}
	// Starting at the wrong place is a gap, not silence.
	_, err = Verify(testOrigin, 3, k.verifiers, recs[21:], cps, StartAt(cps[1]))
	expectProblem(t, err, Deleted, 20, 20)
}

// FuzzVerifier mutates a fully checkpointed log and requires that every
// change is detected and that an untouched log verifies.
func FuzzVerifier(f *testing.F) {
	k := newKeys(f, "fuzz")
	orig, cps := build(f, k, 64, 8)
	f.Add(uint8(0), uint8(5), uint16(3), uint8(1))
	f.Add(uint8(1), uint8(63), uint16(0), uint8(0))
	f.Add(uint8(2), uint8(10), uint16(0), uint8(0))
	f.Add(uint8(3), uint8(0), uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, op, idx uint8, off uint16, val uint8) {
		recs := slices.Clone(orig)
		i := int(idx) % len(recs)
		changed := true
		switch op % 7 {
		case 0: // flip a bit of the event
			ev := slices.Clone(recs[i].Event)
			ev[int(off)%len(ev)] ^= 1 << (val % 8)
			recs[i].Event = ev
		case 1: // delete
			recs = slices.Delete(recs, i, i+1)
		case 2: // duplicate
			recs = slices.Insert(recs, i, recs[i])
		case 3: // swap with a neighbour
			j := (i + 1 + int(val)%3) % len(recs)
			changed = recs[i].Seq != recs[j].Seq
			recs[i], recs[j] = recs[j], recs[i]
		case 4: // flip a bit of prev_hash
			recs[i].PrevHash[int(off)%HashSize] ^= 1 << (val % 8)
		case 5: // edit and rewrite everything after, without the key
			ev := slices.Clone(recs[i].Event)
			ev[int(off)%len(ev)] ^= 1 << (val % 8)
			recs[i].Event = ev
			rechain(recs, i)
		case 6: // truncate
			recs = recs[:i]
			changed = i < len(orig)
		}
		_, err := Verify(testOrigin, 3, k.verifiers, recs, cps)
		if changed && err == nil {
			t.Fatalf("op %d at %d not detected", op%7, i)
		}
		if !changed && err != nil {
			t.Fatalf("unchanged log rejected: %v", err)
		}
		var p *Problem
		if err != nil && !errors.As(err, &p) {
			t.Fatalf("not a located problem: %v", err)
		}
		if p != nil && (op%7 == 0 || op%7 == 1) && p.Seq != uint64(i) {
			t.Fatalf("op %d at %d located at %d: %v", op%7, i, p.Seq, p)
		}
	})
}
