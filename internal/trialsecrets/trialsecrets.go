// Package trialsecrets creates a trial deployment's secrets once: the checkpoint
// signing key, the client-IP HMAC key, and five tokens (hook, OpenTelemetry and
// registry writers; an auditor and an admin reader) whose hashes the services load
// and whose secrets go to tokens.env (0600). `trailctl init` (docker-compose.yml)
// and `trailkeep dev` both use it; production secrets come from a secret store.
package trialsecrets

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/trailkeep/trailkeep/pkg/bearer"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
)

// The files Init writes. The services read them through their *_FILE variables.
const (
	SignerKey    = "checkpoints.key"    // TRAILKEEP_SIGNER_KEY_FILE
	SignerPub    = "checkpoints.pub"    // trailctl verify --verifier-key
	IPKey        = "ip.key"             // TRAILKEEP_INGEST_IP_KEY_FILE
	IngestTokens = "ingest-tokens.json" // TRAILKEEP_INGEST_TOKENS_FILE
	QueryTokens  = "query-tokens.json"  // TRAILKEEP_QUERY_TOKENS_FILE
	TokensEnv    = "tokens.env"         // the secrets, for the person trying it
)

// Init writes into dir (created 0700) the missing secret files. The token files and tokens.env are
// one unit: they are written together or not at all, so hashes and secrets match.
func Init(dir, tenant, actor string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !exists(filepath.Join(dir, SignerKey)) {
		skey, vkey, err := chain.GenerateKey("trailkeep-checkpoints")
		if err != nil {
			return err
		}
		if err := writeSecret(dir, SignerPub, vkey+"\n", 0o644); err != nil {
			return err
		}
		if err := writeSecret(dir, SignerKey, skey+"\n", 0o600); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(dir, IPKey)) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return err
		}
		if err := writeSecret(dir, IPKey, base64.StdEncoding.EncodeToString(k)+"\n", 0o600); err != nil {
			return err
		}
	}
	if exists(filepath.Join(dir, TokensEnv)) {
		return nil
	}
	return initTokens(dir, tenant, actor)
}

// initTokens creates the write and read tokens, validated as the services will.
func initTokens(dir, tenant, actor string) error {
	secrets := map[string]string{}
	var ing []ingest.Token
	for _, w := range []struct{ env, name, source, scope string }{
		{"HOOK_TOKEN", "dev-hooks", "claude_code", ingest.ScopeHooks},
		{"OTEL_TOKEN", "dev-telemetry", "claude_code", "logs:write"},
		{"REGISTRY_TOKEN", "dev-registry", "registry", "events:write,cloudevents:write"},
	} {
		secret, sum, err := bearer.New()
		if err != nil {
			return err
		}
		t := ingest.Token{Name: w.name, SHA256: sum, Tenant: tenant, Source: w.source, Scopes: strings.Split(w.scope, ",")}
		if w.source == "claude_code" {
			t.Actor = map[string]any{"type": "user", "id": actor, "email": actor}
		}
		ing, secrets[w.env] = append(ing, t), secret
	}
	var qry []queryapi.Token
	for _, r := range []struct {
		env, name string
		role      queryapi.Role
		tenant    string
	}{
		{"AUDITOR_TOKEN", "dev-auditor", queryapi.RoleAuditor, tenant},
		{"ADMIN_TOKEN", "dev-admin", queryapi.RoleAdmin, "*"},
	} {
		secret, sum, err := bearer.New()
		if err != nil {
			return err
		}
		qry, secrets[r.env] = append(qry, queryapi.Token{Name: r.name, SHA256: sum, Role: r.role, Tenants: []string{r.tenant}}), secret
	}
	ib, _ := json.MarshalIndent(map[string]any{"tokens": ing}, "", "  ")
	if _, err := ingest.ParseTokens(ib); err != nil {
		return fmt.Errorf("ingest tokens: %w", err)
	}
	qb, _ := json.MarshalIndent(map[string]any{"tokens": qry}, "", "  ")
	if _, err := queryapi.ParseTokens(qb); err != nil {
		return fmt.Errorf("query tokens: %w", err)
	}
	var env []string
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	// tokens.env last: its presence means the unit is complete.
	for _, w := range []struct {
		name, data string
	}{{IngestTokens, string(ib) + "\n"}, {QueryTokens, string(qb) + "\n"}, {TokensEnv, strings.Join(env, "\n") + "\n"}} {
		if err := writeSecret(dir, w.name, w.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeSecret writes name in dir atomically (temporary file, then rename).
func writeSecret(dir, name, data string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Tokens reads tokens.env: HOOK_TOKEN, OTEL_TOKEN, REGISTRY_TOKEN, AUDITOR_TOKEN and
// ADMIN_TOKEN.
func Tokens(dir string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(dir, TokensEnv))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}
