package ingest

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trailkeep/trailkeep/pkg/bearer"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// Scopes a write token can hold; each endpoint needs one.
const (
	ScopeEvents      = "events:write"      // POST /v1/events
	ScopeHooks       = "hooks:write"       // POST /v1/hooks/claude-code
	ScopeCloudEvents = "cloudevents:write" // POST /v1/cloudevents
	ScopeLogs        = "logs:write"        // POST /v1/logs (OTLP) and the OTLP gRPC logs service
)

// Token is one configured credential. Only the SHA-256 of the secret is stored: a
// leaked configuration does not leak usable tokens, and tokens are 256-bit random
// values, so a fast hash is enough (no password-style stretching is needed).
type Token struct {
	// Name identifies the token in logs and metrics (never the secret).
	Name string `json:"name"`
	// SHA256 is the lower-case hex SHA-256 of the bearer token.
	SHA256 string `json:"sha256"`
	// Tenant every event sent with this token belongs to.
	Tenant string `json:"tenant"`
	// Source is the tool the token speaks for (claude_code, registry, ...); it
	// becomes source.tool.
	Source string `json:"source"`
	// Scopes lists the endpoints the token may call.
	Scopes []string `json:"scopes"`
	// Actor, when set, is the person (or service) behind the token. Claude Code
	// payloads carry no identity, so hook tokens should be per user.
	Actor map[string]any `json:"actor,omitempty"`
}

// Principal is an authenticated caller.
type Principal struct {
	Token *Token
	hash  [32]byte
}

// Tokens is an immutable set of configured tokens.
type Tokens struct {
	byHash map[[32]byte]*Token
}

// ParseTokens reads the token configuration: a JSON object {"tokens": [Token...]}.
func ParseTokens(data []byte) (*Tokens, error) {
	m, err := bearer.ParseConfig(data, "ingest", `{"tokens":[{"name","sha256","tenant","source","scopes"}]}`, checkToken)
	if err != nil {
		return nil, err
	}
	return &Tokens{byHash: m}, nil
}

// checkToken validates one configured write token.
func checkToken(t *Token) error {
	if !event.IsSlug(t.Tenant) || !event.IsSlug(t.Source) {
		return errors.New("tenant and source must be lower-case slugs")
	}
	if len(t.Scopes) == 0 {
		return fmt.Errorf("no scopes; use %s, %s, %s or %s", ScopeEvents, ScopeHooks, ScopeCloudEvents, ScopeLogs)
	}
	for _, s := range t.Scopes {
		if s != ScopeEvents && s != ScopeHooks && s != ScopeCloudEvents && s != ScopeLogs {
			return fmt.Errorf("unknown scope %q", s)
		}
	}
	if t.Actor != nil {
		typ, _ := t.Actor["type"].(string)
		id, _ := t.Actor["id"].(string)
		if typ == "" || id == "" {
			return errors.New("actor needs a type and an id")
		}
	}
	return nil
}

// TokenName names the token in configuration errors.
func (t *Token) TokenName() string { return t.Name }

// Digest implements bearer.Entry.
func (t *Token) Digest() string { return t.SHA256 }

// authenticate finds the token presented in r (see bearer.Find).
func (ts *Tokens) authenticate(r *http.Request) (*Principal, error) {
	t, sum, err := bearer.Find(r, ts.byHash)
	if err != nil {
		return nil, err
	}
	return &Principal{Token: t, hash: sum}, nil
}

func (p *Principal) has(scope string) bool {
	for _, s := range p.Token.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}
