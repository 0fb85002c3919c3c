package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/fixtures"
)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return out.String(), errb.String(), code
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := run(t, args...)
	if code != 0 {
		t.Fatalf("trailctl %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

const origin = "test.trailkeep/audit.chained/0"

// setup canonicalises the registry fixtures, chains them and returns the
// paths of the key, records and checkpoints.
func setup(t *testing.T) (dir string) {
	dir = t.TempDir()
	mustRun(t, "keys", "generate", "k", "--dir", dir)
	writeFile(t, filepath.Join(dir, "ip.key"), []byte(strings.Repeat("ab", 32)), 0o600)
	events := mustRun(t, "event", "canonicalize", "--tenant", "acme-platform", "--tool", "registry",
		"--ip-key-file", filepath.Join(dir, "ip.key"), filepath.Join(fixtures.Dir(t), "registry/canonical-events.jsonl"))
	if n := strings.Count(events, "\n"); n != 3 {
		t.Fatalf("want 3 canonical events, got %d", n)
	}
	writeFile(t, filepath.Join(dir, "events.ndjson"), []byte(events), 0o644)
	mustRun(t, "chain", "append", "--origin", origin, "--signer-key", filepath.Join(dir, "k.key"),
		"--records", filepath.Join(dir, "records.ndjson"), "--checkpoints", filepath.Join(dir, "cps.ndjson"),
		"--checkpoint-every", "2", filepath.Join(dir, "events.ndjson"))
	return dir
}

func verifyArgs(dir, records string) []string {
	return []string{"verify", "--origin", origin, "--verifier-key", filepath.Join(dir, "k.pub"),
		"--records", filepath.Join(dir, records), "--checkpoints", filepath.Join(dir, "cps.ndjson")}
}

func TestChainVerifyProveTamper(t *testing.T) {
	dir := setup(t)
	out := mustRun(t, verifyArgs(dir, "records.ndjson")...)
	if !strings.Contains(out, "records      3") || !strings.Contains(out, "checkpoints  2 verified") {
		t.Fatalf("summary: %s", out)
	}

	// Deterministic: chaining the same events again gives identical files.
	mustRun(t, "chain", "append", "--origin", origin, "--signer-key", filepath.Join(dir, "k.key"),
		"--records", filepath.Join(dir, "records2.ndjson"), "--checkpoints", filepath.Join(dir, "cps2.ndjson"),
		"--checkpoint-every", "2", filepath.Join(dir, "events.ndjson"))
	a, err := os.ReadFile(filepath.Join(dir, "records.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "records2.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "cps.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := os.ReadFile(filepath.Join(dir, "cps2.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || !bytes.Equal(ca, cb) {
		t.Fatal("chaining the same input twice gave different output")
	}

	proof := mustRun(t, "prove", "--seq", "2", "--origin", origin, "--verifier-key", filepath.Join(dir, "k.pub"),
		"--records", filepath.Join(dir, "records.ndjson"), "--checkpoints", filepath.Join(dir, "cps.ndjson"))
	writeFile(t, filepath.Join(dir, "proof.json"), []byte(proof), 0o644)
	if out := mustRun(t, "verify-proof", filepath.Join(dir, "proof.json"), "--origin", origin, "--verifier-key", filepath.Join(dir, "k.pub")); !strings.Contains(out, "record 0/2 is included") {
		t.Fatalf("check: %s", out)
	}
	forged := strings.Replace(proof, "auth.sso_failed", "auth.sso_loginx", 1)
	writeFile(t, filepath.Join(dir, "forged.json"), []byte(forged), 0o644)
	if _, _, code := run(t, "verify-proof", filepath.Join(dir, "forged.json"), "--verifier-key", filepath.Join(dir, "k.pub")); code != 1 {
		t.Fatalf("forged proof: exit %d, want 1", code)
	}

	// Tamper: edit one record; verification fails with exit 1 and names it.
	tampered := bytes.Replace(a, []byte(`"new_role":"writer"`), []byte(`"new_role":"admin"`), 1)
	writeFile(t, filepath.Join(dir, "tampered.ndjson"), tampered, 0o644)
	_, errs, code := run(t, verifyArgs(dir, "tampered.ndjson")...)
	if code != 1 || !strings.Contains(errs, "partition 0 seq 1: modified") {
		t.Fatalf("tampered: exit %d: %s", code, errs)
	}
	// Delete the last record: the signed checkpoint at size 3 exposes it.
	lines := bytes.SplitAfter(a, []byte("\n"))
	writeFile(t, filepath.Join(dir, "short.ndjson"), bytes.Join(lines[:2], nil), 0o644)
	_, errs, code = run(t, verifyArgs(dir, "short.ndjson")...)
	if code != 1 || !strings.Contains(errs, "seq 2: deleted") {
		t.Fatalf("truncated: exit %d: %s", code, errs)
	}
	// Another key cannot vouch for this log.
	mustRun(t, "keys", "generate", "other", "--dir", dir)
	args := verifyArgs(dir, "records.ndjson")
	args[4] = filepath.Join(dir, "other.pub")
	if _, errs, code := run(t, args...); code != 1 || !strings.Contains(errs, "bad_signature") {
		t.Fatalf("foreign key: exit %d: %s", code, errs)
	}
}

func TestCanonicalizeRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	var in bytes.Buffer
	in.WriteString(`{"action":"skill.updated","actor":{"type":"user","id":"u"},"resource":{"type":"skill","id":"s"}}` + "\n")
	for _, b := range fixtures.BadInputs(t) {
		if !bytes.ContainsAny(b.Body, "\n\r") && len(b.Body) < 1<<20 {
			in.Write(b.Body)
			in.WriteByte('\n')
		}
	}
	p := filepath.Join(dir, "in.ndjson")
	writeFile(t, p, in.Bytes(), 0o644)
	out, errs, code := run(t, "event", "canonicalize", "--tenant", "t1", "--tool", "registry", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("the one good event must still be written: %q", out)
	}
	for _, want := range []string{"line 2: ", "/action: duplicate key", "/resource/id: must not contain U+0000", "rejected"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"verify"},
		{"nosuchcommand"},
		{"event", "canonicalize"},
		{"verify", "--origin", "x", "--records", "r", "--checkpoints", "c"},
	} {
		if _, _, code := run(t, args...); code != 2 {
			t.Errorf("trailctl %v: exit %d, want 2", args, code)
		}
	}
}

func TestKeysShow(t *testing.T) {
	dir := t.TempDir()
	pub := strings.TrimSpace(mustRun(t, "keys", "generate", "ops", "--dir", dir))
	out := mustRun(t, "keys", "show", filepath.Join(dir, "ops.key"))
	if !strings.HasPrefix(out, pub+"\n") {
		t.Fatalf("keys show %q, generated %q", out, pub)
	}
	// The key id is the hash field of the public key, the one signature lines carry.
	if parts := strings.Split(pub, "+"); !strings.Contains(out, "name: ops\n") || !strings.Contains(out, "key id: "+parts[1]+"\n") {
		t.Errorf("keys show does not print the name and key id: %q", out)
	}
	if _, _, code := run(t, "keys", "generate", "ops", "--dir", dir); code == 0 {
		t.Fatal("overwrote an existing signing key")
	}
}

// writeFile writes a test input; a write that fails would leave the command reading
// something else and the test probing nothing.
func writeFile(t *testing.T, name string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, data, perm); err != nil {
		t.Fatal(err)
	}
}
