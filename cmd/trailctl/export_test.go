package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
)

// cliStore stores 12 acme events on partition 0 (checkpoints every 5) and 3 globex
// events on partition 1, and returns the flags that reach the database.
func cliStore(t *testing.T) ([]string, *chaintest.Log) {
	store := chtest.Store(t)
	log := chaintest.New(t, "cli", 5)
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	for i := 0; i < 12; i++ {
		status := "success"
		if i%4 == 0 {
			status = "denied"
		}
		doc := chaintest.Doc("skill.updated", "sarah@acme.example", "skill", "api-conventions")
		doc["result"] = map[string]any{"status": status}
		log.Add(0, "acme", at.Add(time.Duration(i)*time.Minute), doc)
	}
	for i := 0; i < 3; i++ {
		log.Add(1, "globex", at.Add(time.Duration(i)*time.Minute), chaintest.Doc("team.member_added", "ops@globex.example", "team", "infra"))
	}
	ctx := context.Background()
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertCheckpoints(ctx, log.Checkpoints); err != nil {
		t.Fatal(err)
	}
	return []string{"--clickhouse", chtest.Addr, "--database", store.Database()}, log
}

func TestExportWithSignedManifest(t *testing.T) {
	db, log := cliStore(t)
	dir := t.TempDir()
	mustRun(t, "keys", "generate", "exporter", "--dir", dir)
	out := filepath.Join(dir, "acme.ndjson")
	got := mustRun(t, append([]string{"export", "tenant:acme", "--out", out, "--signing-key", filepath.Join(dir, "exporter.key"), "--quiet", "--by", "auditor"}, db...)...)
	if !strings.Contains(got, "exported 12 events (1 partitions") {
		t.Fatalf("export: %s", got)
	}
	f, _ := os.Open(out)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var r chain.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ComputeLeafHash() != log.Records[n].LeafHash || r.Seq != uint64(n) {
			t.Fatalf("line %d is not the stored record %d: %v", n, n, err)
		}
		n++
	}
	f.Close()
	if n != 12 {
		t.Fatalf("%d lines exported", n)
	}
	manifest, err := os.ReadFile(out + ".manifest")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"rows": 12`, `"first_seq": 0`, `"last_seq": 11`, `"created_by": "auditor"`, `"query": "tenant:acme"`} {
		if !strings.Contains(string(manifest), want) {
			t.Fatalf("manifest lacks %s:\n%s", want, manifest)
		}
	}
	if strings.Contains(string(manifest), `"checkpoint"`) || !strings.Contains(string(manifest), "— exporter ") {
		t.Fatalf("seq 11 is only covered by no checkpoint (sizes 5, 10): the manifest must leave it empty, and be signed:\n%s", manifest)
	}
	pub := log.PublicKeyFile()
	ok := mustRun(t, "verify-export", out+".manifest", "--exporter-key", filepath.Join(dir, "exporter.pub"), "--verifier-key", pub)
	if !strings.Contains(ok, "OK  acme.ndjson: 12 events") || !strings.Contains(ok, "partition 0: no covering checkpoint") {
		t.Fatalf("verify-export: %s", ok)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, out, []byte(strings.Replace(string(data), "denied", "allowd", 1)), 0o644)
	if _, stderr, code := run(t, "verify-export", out+".manifest", "--exporter-key", filepath.Join(dir, "exporter.pub")); code != 1 || !strings.Contains(stderr, "sha256") {
		t.Fatalf("a changed export: exit %d %s", code, stderr)
	}

	csvOut := filepath.Join(dir, "globex.csv")
	mustRun(t, append([]string{"export", "event:team.*", "--tenant", "globex", "--format", "csv", "--out", csvOut, "--signing-key", filepath.Join(dir, "exporter.key"), "--quiet"}, db...)...)
	if b, err := os.ReadFile(csvOut); err != nil || strings.Count(string(b), "\n") != 4 {
		t.Fatalf("csv export (%v):\n%s", err, b)
	}
	if _, stderr, code := run(t, append([]string{"export", "event:team.*", "--tenant", "globex", "--out", csvOut, "--signing-key", filepath.Join(dir, "exporter.key")}, db...)...); code != 2 || !strings.Contains(stderr, "--force") {
		t.Fatalf("overwriting an export: exit %d %s", code, stderr)
	}
	if _, stderr, code := run(t, append([]string{"export", "actor:(", "--out", filepath.Join(dir, "x"), "--signing-key", filepath.Join(dir, "exporter.key")}, db...)...); code != 2 || stderr == "" {
		t.Fatalf("a bad query: exit %d %s", code, stderr)
	}
}

func TestSQLTailAndSavedQueries(t *testing.T) {
	db, _ := cliStore(t)
	out := mustRun(t, append([]string{"sql", "SELECT actor_id, count() AS n FROM audit_events WHERE result_status = 'denied' GROUP BY actor_id", "--tenant", "acme"}, db...)...)
	if !strings.Contains(out, "sarah@acme.example  3") {
		t.Fatalf("sql: %s", out)
	}
	out = mustRun(t, append([]string{"sql", "SELECT count() AS n FROM audit_events", "--tenant", "globex", "-o", "json"}, db...)...)
	if strings.TrimSpace(out) != `{"n":3}` {
		t.Fatalf("sql scoped to globex: %s", out)
	}
	if _, stderr, code := run(t, append([]string{"sql", "SELECT * FROM system.users"}, db...)...); code != 2 || !strings.Contains(stderr, "system.users") {
		t.Fatalf("sql on a system table: exit %d %s", code, stderr)
	}
	// The store is ClickHouse 18.16: its ALL joins are refused (sqlscope.Scope.Legacy).
	if _, stderr, code := run(t, append([]string{"sql", "SELECT a.seq, c.chain_partition FROM audit_events a JOIN audit_checkpoints c USING chain_partition"}, db...)...); code != 2 || !strings.Contains(stderr, "ANY INNER or ANY LEFT") {
		t.Fatalf("sql with an ALL join on 18.16: exit %d %s", code, stderr)
	}

	out = mustRun(t, append([]string{"tail", "-n", "3", "tenant:acme"}, db...)...)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasSuffix(lines[0], "0/9") || !strings.HasSuffix(lines[2], "0/11") {
		t.Fatalf("tail -n 3: %s", out)
	}

	q := append([]string{"query"}, db...)
	mustRun(t, append(q, "save", "denied", "result:denied", "--tenant", "acme", "--description", "denied attempts")...)
	mustRun(t, append(q, "save", "denied", "result:denied", "--tenant", "globex")...)
	if out := mustRun(t, append(q, "list", "--tenant", "acme")...); !strings.Contains(out, "denied  result:denied") || !strings.Contains(out, "denied attempts") {
		t.Fatalf("query list: %s", out)
	}
	if out := mustRun(t, append(q, "run", "denied", "--tenant", "acme", "-o", "json")...); strings.Count(out, "\n") != 3 {
		t.Fatalf("query run: %s", out)
	}
	if _, _, code := run(t, append(q, "run", "denied", "--tenant", "globex", "--fail-empty")...); code != 1 {
		t.Fatalf("the globex query must not see acme's events: exit %d", code)
	}
	if _, stderr, code := run(t, append(q, "save", "bad", "actor:(", "--tenant", "acme")...); code != 2 || stderr == "" {
		t.Fatalf("saving a bad query: exit %d", code)
	}
	mustRun(t, append(q, "delete", "denied", "--tenant", "acme")...)
	if _, _, code := run(t, append(q, "run", "denied", "--tenant", "acme")...); code != 1 {
		t.Fatalf("running a deleted query: exit %d", code)
	}
}
