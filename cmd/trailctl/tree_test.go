package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
)

// TestTreeCheckAndRebuild: tree check passes on a store the writer path filled,
// exits 1 naming the partition once a subtree row is wrong, and tree rebuild
// repairs it; rebuild without --partition is a usage error.
func TestTreeCheckAndRebuild(t *testing.T) {
	store := chtest.Store(t)
	log := chaintest.New(t, "tree-cli", 0)
	at := time.Now().UTC().Add(-time.Hour)
	for i := range 600 {
		log.Add(int32(i%2), "acme", at, chaintest.Doc("skill.updated", "u@acme.example", "skill", fmt.Sprint(i)))
	}
	log.Sign(0)
	log.Sign(1)
	ctx := context.Background()
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertCheckpoints(ctx, log.Checkpoints); err != nil {
		t.Fatal(err)
	}
	db := []string{"--clickhouse", chtest.Addr, "--database", store.Database()}
	out := mustRun(t, append([]string{"tree", "check"}, db...)...)
	if strings.Count(out, "matches its latest checkpoint") != 2 {
		t.Fatalf("tree check on an intact store:\n%s", out)
	}
	// Replace partition 1's only subtree with a wrong hash.
	if err := store.Exec(ctx, "ALTER TABLE "+store.Database()+".audit_subtrees DELETE WHERE chain_partition = 1"); err != nil {
		t.Fatal(err)
	}
	for n, err := store.PendingMutations(ctx); n > 0 || err != nil; n, err = store.PendingMutations(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := store.Exec(ctx, "INSERT INTO "+store.Database()+".audit_subtrees (chain_partition, level, idx, hash) SELECT toUInt32(1), toUInt8(8), toUInt64(0), '"+strings.Repeat("cd", 32)+"'"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, append([]string{"tree", "check"}, db...)...)
	if code != 1 || !strings.Contains(stdout, "partition 1: tree of 300 leaves DIFFERS") || !strings.Contains(stderr, "trailctl tree rebuild --partition N") {
		t.Fatalf("tree check on a damaged subtree: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := mustRun(t, append([]string{"tree", "rebuild", "--partition", "1"}, db...)...); !strings.Contains(out, "1 subtrees stored") || !strings.Contains(out, "matches its latest checkpoint") {
		t.Fatalf("tree rebuild:\n%s", out)
	}
	if out := mustRun(t, append([]string{"tree", "check", "--partition", "1"}, db...)...); !strings.Contains(out, "partition 1: tree of 300 leaves matches") {
		t.Fatalf("tree check after the rebuild:\n%s", out)
	}
	if _, stderr, code := run(t, append([]string{"tree", "rebuild"}, db...)...); code != 2 || !strings.Contains(stderr, "--partition is required") {
		t.Fatalf("rebuild without --partition: exit %d, %s", code, stderr)
	}
}
