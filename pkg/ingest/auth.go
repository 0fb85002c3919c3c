package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/trailkeep/trailkeep/pkg/bearer"
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

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ParseTokens reads the token configuration: a JSON object {"tokens": [Token...]}.
func ParseTokens(data []byte) (*Tokens, error) {
	var doc struct {
		Tokens []Token `json:"tokens"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("ingest: token configuration: %w (expected {\"tokens\":[{\"name\",\"sha256\",\"tenant\",\"source\",\"scopes\"}]})", err)
	}
	ts := &Tokens{byHash: make(map[[32]byte]*Token, len(doc.Tokens))}
	for i := range doc.Tokens {
		t := &doc.Tokens[i]
		where := fmt.Sprintf("ingest: token %d (%q)", i, t.Name)
		h, err := bearer.ParseDigest(t.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if !slugRE.MatchString(t.Tenant) || !slugRE.MatchString(t.Source) {
			return nil, fmt.Errorf("%s: tenant and source must be lower-case slugs", where)
		}
		if len(t.Scopes) == 0 {
			return nil, fmt.Errorf("%s: no scopes; use %s, %s, %s or %s", where, ScopeEvents, ScopeHooks, ScopeCloudEvents, ScopeLogs)
		}
		for _, s := range t.Scopes {
			if s != ScopeEvents && s != ScopeHooks && s != ScopeCloudEvents && s != ScopeLogs {
				return nil, fmt.Errorf("%s: unknown scope %q", where, s)
			}
		}
		if t.Actor != nil {
			if typ, _ := t.Actor["type"].(string); typ == "" {
				return nil, fmt.Errorf("%s: actor needs a type and an id", where)
			}
			if id, _ := t.Actor["id"].(string); id == "" {
				return nil, fmt.Errorf("%s: actor needs a type and an id", where)
			}
		}
		if _, dup := ts.byHash[h]; dup {
			return nil, fmt.Errorf("%s: the same token is configured twice", where)
		}
		ts.byHash[h] = t
	}
	return ts, nil
}

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
