package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/trailkeep/trailkeep/internal/trialsecrets"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
)

// TestInitSecrets checks that init writes secrets the services accept, with private
// modes, whose hashes match the secrets handed out, and that a second run changes
// nothing (a restarted compose init must not rotate the signing key).
func TestInitSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	if _, errs, code := run(t, "init", "--dir", dir, "--tenant", "globex"); code != 0 {
		t.Fatalf("init: exit %d: %s", code, errs)
	}
	first := snapshot(t, dir)
	for name, mode := range map[string]os.FileMode{trialsecrets.SignerKey: 0o600, trialsecrets.IPKey: 0o600, trialsecrets.IngestTokens: 0o600,
		trialsecrets.QueryTokens: 0o600, trialsecrets.TokensEnv: 0o600, trialsecrets.SignerPub: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s mode %o, want %o", name, st.Mode().Perm(), mode)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %o, want 700", st.Mode().Perm())
	}
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(first[trialsecrets.TokensEnv]), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	if _, err := ingest.ParseTokens([]byte(first[trialsecrets.IngestTokens])); err != nil {
		t.Fatalf("ingest rejects its token file: %v", err)
	}
	if _, err := queryapi.ParseTokens([]byte(first[trialsecrets.QueryTokens])); err != nil {
		t.Fatalf("query rejects its token file: %v", err)
	}
	var ing struct{ Tokens []ingest.Token }
	var qry struct{ Tokens []queryapi.Token }
	if err := json.Unmarshal([]byte(first[trialsecrets.IngestTokens]), &ing); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(first[trialsecrets.QueryTokens]), &qry); err != nil {
		t.Fatal(err)
	}
	hashes := map[string]bool{}
	for _, tk := range ing.Tokens {
		hashes[tk.SHA256] = true
		if tk.Tenant != "globex" {
			t.Errorf("ingest token %s has tenant %q", tk.Name, tk.Tenant)
		}
	}
	for _, tk := range qry.Tokens {
		hashes[tk.SHA256] = true
	}
	for _, k := range []string{"HOOK_TOKEN", "OTEL_TOKEN", "REGISTRY_TOKEN", "AUDITOR_TOKEN", "ADMIN_TOKEN"} {
		sum := sha256.Sum256([]byte(env[k]))
		if env[k] == "" || !hashes[hex.EncodeToString(sum[:])] {
			t.Errorf("%s in tokens.env matches no token entry", k)
		}
	}
	if _, errs, code := run(t, "init", "--dir", dir); code != 0 {
		t.Fatalf("second init: exit %d: %s", code, errs)
	}
	for name, data := range snapshot(t, dir) {
		if first[name] != data {
			t.Errorf("second init rewrote %s", name)
		}
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestInitBucket creates the archive bucket on the real S3 server, accepts it on a
// second run, and refuses a bucket that exists without Object Lock.
func TestInitBucket(t *testing.T) {
	srv := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	unlocked := srv.Bucket(t, false)
	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	fresh := "trailkeep-init-" + hex.EncodeToString(rnd[:])
	for _, tc := range []struct {
		name, bucket, wantErr string
	}{
		{"creates", fresh, ""},
		{"exists already", fresh, ""},
		{"exists without lock", unlocked, "without Object Lock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.bucket
			_, errs, code := run(t, "init", "--dir", t.TempDir(), "--s3-endpoint", srv.Endpoint, "--s3-path-style", "--s3-bucket", b, "--wait", "20s")
			if tc.wantErr == "" && code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if tc.wantErr != "" && (code == 0 || !strings.Contains(errs, tc.wantErr)) {
				t.Fatalf("exit %d, stderr %q; want failure naming %q", code, errs, tc.wantErr)
			}
		})
	}
}
