package proof_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/proof"
)

func bundle(t *testing.T) ([]byte, *chaintest.Log) {
	log := chaintest.New(t, "proof-test", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 11; i++ {
		log.Add(3, "acme", at.Add(time.Duration(i)*time.Second), chaintest.Doc("skill.updated", fmt.Sprintf("u%d", i), "skill", "api-conventions"))
	}
	cp := log.Sign(3)
	var leaves chain.MemoryLeaves
	for _, r := range log.Records {
		leaves = append(leaves, r.LeafHash)
	}
	b, err := proof.Build(log.Records[6], cp, leaves)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw, log
}

func TestBundleVerifies(t *testing.T) {
	raw, log := bundle(t)
	verifiers, _ := chain.NewVerifiers(log.VerifierKey)
	b, err := proof.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := b.Verify(log.Origin(3), verifiers)
	if err != nil || cp.Size != 11 {
		t.Fatalf("Verify = %+v, %v", cp, err)
	}
	if _, err := b.Verify(log.Origin(2), verifiers); err == nil {
		t.Fatal("a bundle verified against the wrong origin")
	}
	other := chaintest.New(t, "proof-test", 0)
	wrongKey, _ := chain.NewVerifiers(other.VerifierKey)
	if _, err := b.Verify("", wrongKey); !errors.Is(err, proof.ErrInvalid) {
		t.Fatalf("a bundle verified with another key: %v", err)
	}
	var leaves chain.MemoryLeaves
	for _, r := range log.Records {
		leaves = append(leaves, r.LeafHash)
	}
	leaves[2][0] ^= 1 // the store's leaves no longer add up to the signed root
	if _, err := proof.Build(log.Records[6], chain.SignedCheckpoint{Note: chain.NoteText(b.Checkpoint)}, leaves); err == nil {
		t.Fatal("Build returned a bundle from leaves that do not match the checkpoint")
	}
}

// TestEveryByteOfEventAndProofMatters changes, one at a time, every byte of the
// event, the record's position and hashes, the audit path and the checkpoint, and
// requires each change to fail verification.
func TestEveryByteOfEventAndProofMatters(t *testing.T) {
	raw, log := bundle(t)
	verifiers, _ := chain.NewVerifiers(log.VerifierKey)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(fields["record"], &rec); err != nil {
		t.Fatal(err)
	}
	spans := map[string][2]int{}
	span := func(name string, value []byte) {
		key := []byte(`"` + name + `":`)
		i := bytes.Index(raw, append(key, value...))
		if i < 0 {
			t.Fatalf("cannot locate %s in the bundle", name)
		}
		spans[name] = [2]int{i + len(key), i + len(key) + len(value)}
	}
	span("event", rec["event"])
	span("leaf_hash", rec["leaf_hash"])
	span("prev_hash", rec["prev_hash"])
	span("chained_at", rec["chained_at"])
	span("inclusion", fields["inclusion"])
	span("checkpoint", fields["checkpoint"])
	checked := 0
	for name, sp := range spans {
		for i := sp[0]; i < sp[1]; i++ {
			c := raw[i]
			if c == '"' || c == ',' || c == '[' || c == ']' || c == '\\' {
				continue // structure, not content: changing it is a parse error, tested below
			}
			mutated := bytes.Clone(raw)
			mutated[i] = substitute(c)
			b, err := proof.Parse(mutated)
			if err == nil {
				_, err = b.Verify("", verifiers)
			}
			if err == nil {
				t.Fatalf("changing byte %d (%q -> %q, in %s) still verifies", i, c, mutated[i], name)
			}
			checked++
		}
	}
	for _, field := range []string{`"seq":6`, `"partition":3`, `"tree_size":11`} {
		mutated := bytes.Replace(raw, []byte(field), []byte(field[:len(field)-1]+"7"), 1)
		if field == `"seq":6` {
			mutated = bytes.Replace(raw, []byte(field), []byte(`"seq":5`), 1)
		}
		if bytes.Equal(mutated, raw) {
			t.Fatalf("bundle lacks %s", field)
		}
		if b, err := proof.Parse(mutated); err == nil {
			if _, err := b.Verify("", verifiers); err == nil {
				t.Fatalf("changing %s still verifies", field)
			}
		}
	}
	if _, err := proof.Parse([]byte(strings.Replace(string(raw), `"inclusion":[`, `"inclusion":[1,`, 1))); err == nil {
		t.Fatal("a malformed bundle parsed")
	}
	t.Logf("%d single-byte changes, each rejected", checked)
}

// substitute returns a different byte of the same kind, so that the change is to
// content (a hex digit for a hex digit, a letter for a letter) and not only a
// syntax error.
func substitute(c byte) byte {
	switch {
	case c >= '0' && c <= '8', c >= 'a' && c <= 'e':
		return c + 1
	case c == '9':
		return 'a'
	case c == 'f':
		return '0'
	case c >= 'A' && c <= 'Y', c >= 'g' && c <= 'y':
		return c + 1
	case c == 'Z', c == 'z':
		return c - 1
	default:
		return 'x'
	}
}
