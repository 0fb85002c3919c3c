package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// TestProveFromStore: trailctl prove EVENT_ID reads the record, the stored leaves and
// a covering checkpoint from ClickHouse; verify-proof checks the bundle offline and
// rejects it once one byte of the event changes.
func TestProveFromStore(t *testing.T) {
	store := chtest.Store(t)
	log := chaintest.New(t, "prove", 4)
	at := time.Now().UTC().Add(-time.Hour)
	for i := 0; i < 10; i++ {
		log.Add(1, "acme", at.Add(time.Duration(i)*time.Second), chaintest.Doc("skill.updated", "sarah@acme.example", "skill", "api-conventions"))
	}
	ctx := context.Background()
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertCheckpoints(ctx, log.Checkpoints); err != nil {
		t.Fatal(err)
	}
	ev, _ := event.Unmarshal(log.Records[5].Event)
	pub := log.PublicKeyFile()
	db := []string{"--clickhouse", chtest.Addr, "--database", store.Database()}
	dir := t.TempDir()

	out := mustRun(t, append([]string{"prove", ev.ID, "--verifier-key", pub}, db...)...)
	file := filepath.Join(dir, "proof.json")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"tree_size":8`) {
		t.Fatalf("proof is not against the first covering checkpoint (size 8): %s", out)
	}
	if got := mustRun(t, "verify-proof", file, "--verifier-key", pub, "--origin", log.Origin(1)); !strings.Contains(got, "record 1/5 is included in prove/audit.chained/1 at size 8") {
		t.Fatalf("verify-proof: %s", got)
	}
	if latest := mustRun(t, append([]string{"prove", ev.ID, "--latest"}, db...)...); !strings.Contains(latest, `"tree_size":8`) {
		t.Fatalf("--latest: %s", latest)
	}

	forged := strings.Replace(out, "sarah@acme.example", "sarah@acme.exampl3", 1)
	writeFile(t, file, []byte(forged), 0o644)
	if _, stderr, code := run(t, "verify-proof", file, "--verifier-key", pub); code != 1 || !strings.Contains(stderr, "does not hash to its leaf_hash") {
		t.Fatalf("a changed event: exit %d, %s", code, stderr)
	}
	ev9, _ := event.Unmarshal(log.Records[9].Event)
	if _, stderr, code := run(t, append([]string{"prove", ev9.ID}, db...)...); code != 1 || !strings.Contains(stderr, "not covered by a signed checkpoint yet") {
		t.Fatalf("an event after the last checkpoint: exit %d, %s", code, stderr)
	}
	if _, stderr, code := run(t, append([]string{"prove", "0190b8a2-6f1c-7cc3-9a51-0b8d2c4e5f60"}, db...)...); code != 1 || !strings.Contains(stderr, "no stored event") {
		t.Fatalf("an unknown id: exit %d, %s", code, stderr)
	}
	if _, _, code := run(t, "verify-proof", file); code != 2 {
		t.Fatalf("verify-proof without a key: exit %d, want 2", code)
	}
}
