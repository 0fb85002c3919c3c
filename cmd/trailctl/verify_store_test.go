package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// TestVerifyStore: trailctl verify --store walks the chains stored in ClickHouse with
// only the public key, by partition, tenant and time range, and locates tampering.
func TestVerifyStore(t *testing.T) {
	store := chtest.Store(t)
	ctx := context.Background()
	skey, vkey, _ := chain.GenerateKey("verify-store")
	signer, _ := chain.NewSigner(skey)
	pub := filepath.Join(t.TempDir(), "k.pub")
	writeFile(t, pub, []byte(vkey+"\n"), 0o644)
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	for p, spec := range map[int32]struct {
		tenant string
		n      int
	}{0: {"acme", 30}, 1: {"globex", 12}} {
		c := chain.New(p)
		var recs []chain.Record
		var cps []clickhouse.StoredCheckpoint
		for i := 0; i < spec.n; i++ {
			doc := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": "u"}, "resource": map[string]any{"type": "skill", "id": "s"}}
			if err := (event.Stamp{Tenant: spec.tenant, Tool: "registry", ReceivedAt: base}).Apply(doc); err != nil {
				t.Fatal(err)
			}
			_, canon, _ := event.Canonicalize(doc, event.DefaultLimits)
			rec, err := c.Append(canon, base.Add(time.Duration(i)*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
			if c.Size()%5 == 0 {
				cp, _ := c.Sign(chain.Origin("test", "audit.chained", p), signer)
				cps = append(cps, clickhouse.StoredCheckpoint{Partition: p, SignedCheckpoint: cp})
			}
		}
		if err := store.InsertRecords(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := store.InsertCheckpoints(ctx, cps); err != nil {
			t.Fatal(err)
		}
	}
	// Every check runs on both transports: ClickHouse directly and the query API
	// (one read path; the verifier trusts neither).
	const readerToken = "tk_trailctl_verify_test_acme_reader_01"
	api := apiWithTokens(t, store, func(h http.Handler) http.Handler { return h },
		map[string]string{apiToken: `"name":"admin","role":"admin","tenants":["*"]`, readerToken: `"name":"acme-reader","role":"reader","tenants":["acme"]`})
	t.Setenv("TRAILKEEP_QUERY_TOKEN", apiToken)
	transports := []struct {
		name string
		args []string
	}{
		{"store", []string{"--clickhouse", chtest.Addr, "--database", store.Database()}},
		{"api", []string{"--api", api}},
	}
	var verify func(args ...string) (string, string, int)
	each := func(checks func()) {
		for _, tr := range transports {
			verify = func(args ...string) (string, string, int) {
				return run(t, append(append([]string{"verify", "--store", "--verifier-key", pub}, tr.args...), args...)...)
			}
			t.Logf("verify --store over %s", tr.name)
			checks()
		}
	}
	expect := func(out string, code, wantCode int, wants ...string) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("exit %d, want %d:\n%s", code, wantCode, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}

	each(func() {
		out, _, code := verify("--deployment", "test")
		expect(out, code, 0, "OK      test/audit.chained/0  records 30 (seq 0..29)  checkpoints 6 verified (sizes 5..30)",
			"OK      test/audit.chained/1  records 12 (seq 0..11)  checkpoints 2 verified (sizes 5..10)",
			"WARNING 2 record(s) after the last signed checkpoint", "2 partition(s), 42 records verified")

		out, _, code = verify("--deployment", "test", "--tenant", "globex")
		expect(out, code, 0, "test/audit.chained/1  records 12")
		if strings.Contains(out, "audit.chained/0") {
			t.Fatalf("--tenant globex verified acme's partition too:\n%s", out)
		}

		// Records chained in [base+10m, base+14m): seq 10..13, widened to checkpoints 10 and 15.
		out, _, code = verify("--deployment", "test", "--partition", "0",
			"--after", base.Add(10*time.Minute).Format(time.RFC3339), "--before", base.Add(14*time.Minute).Format(time.RFC3339))
		expect(out, code, 0, "test/audit.chained/0  records 5 (seq 10..14)  checkpoints 1 verified (sizes 10..15)")

		out, _, code = verify("--deployment", "prod")
		expect(out, code, 1, "FAILED  prod/audit.chained/0", "bad_signature")
	})

	t.Setenv("TRAILKEEP_QUERY_TOKEN", readerToken)
	if _, errOut, code := run(t, "verify", "--store", "--verifier-key", pub, "--api", api, "--deployment", "test", "--partition", "0"); code != 1 || !strings.Contains(errOut, "admin token for all tenants") {
		t.Fatalf("a tenant's reader walking a whole chain: exit %d %s", code, errOut)
	}
	t.Setenv("TRAILKEEP_QUERY_TOKEN", apiToken)

	if err := store.Exec(ctx, "ALTER TABLE "+store.Database()+".audit_events UPDATE event = replaceOne(event, 'skill.updated', 'skill.deleted') WHERE chain_partition = 0 AND seq = 7"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if n, err := store.PendingMutations(ctx); err != nil || n == 0 || time.Now().After(deadline) {
			break
		}
	}
	each(func() {
		out, errOut, code := verify("--deployment", "test")
		expect(out, code, 1, "FAILED  test/audit.chained/0", "partition 0 seq 7: modified", "OK      test/audit.chained/1")
		if !strings.Contains(errOut, "FAILED in 1 of 2 partition(s)") {
			t.Fatalf("stderr: %s", errOut)
		}
		out, _, code = verify("--deployment", "test", "-o", "json", "--partition", "0")
		expect(out, code, 1, `"ok":false`, `"kind":"modified"`, `"seq":7`)
	})

	if _, errOut, code := verify(); code != 2 || !strings.Contains(errOut, "--deployment") {
		t.Fatalf("without --deployment: exit %d %s", code, errOut)
	}
	if _, errOut, code := verify("--deployment", "test", "--after", "last tuesday"); code != 2 || !strings.Contains(errOut, "--after") {
		t.Fatalf("bad --after: exit %d %s", code, errOut)
	}
}
