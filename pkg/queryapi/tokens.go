package queryapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/trailkeep/trailkeep/pkg/bearer"
)

// Role is what a token may do. Each role includes the ones before it.
type Role string

const (
	// RoleReader searches events, reads single events, proofs and checkpoints.
	RoleReader Role = "reader"
	// RoleAuditor also exports and runs read-only SQL.
	RoleAuditor Role = "auditor"
	// RoleAdmin also may hold the all-tenants scope "*".
	RoleAdmin Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleReader:
		return 1
	case RoleAuditor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// AllTenants is the tenant scope of a token that may read every tenant.
const AllTenants = "*"

// Token is one configured credential. Only the SHA-256 of the bearer secret is
// stored (trailctl tokens create prints both).
type Token struct {
	// Name identifies the token in the access log and metrics.
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Role   Role   `json:"role"`
	// Tenants the token may read; ["*"] (admin only) means every tenant.
	Tenants []string `json:"tenants"`
	// Actor is the person or service behind the token, recorded as the actor of
	// every access event. Default: {type: service, id: <name>}.
	Actor *Actor `json:"actor,omitempty"`
}

// Actor is who a token speaks for.
type Actor struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Email string `json:"email,omitempty"`
}

// All reports whether the token reads every tenant.
func (t *Token) All() bool { return slices.Contains(t.Tenants, AllTenants) }

// Tokens is an immutable set of tokens.
type Tokens struct {
	byHash map[[32]byte]*Token
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ParseTokens reads {"tokens": [Token...]}.
func ParseTokens(data []byte) (*Tokens, error) {
	var doc struct {
		Tokens []Token `json:"tokens"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("queryapi: token configuration: %w (expected {\"tokens\":[{\"name\",\"sha256\",\"role\",\"tenants\"}]})", err)
	}
	ts := &Tokens{byHash: map[[32]byte]*Token{}}
	for i := range doc.Tokens {
		t := &doc.Tokens[i]
		where := fmt.Sprintf("queryapi: token %d (%q)", i, t.Name)
		h, err := bearer.ParseDigest(t.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if t.Name == "" {
			return nil, fmt.Errorf("%s: a name is required", where)
		}
		if t.Role.rank() == 0 {
			return nil, fmt.Errorf("%s: role must be reader, auditor or admin", where)
		}
		if len(t.Tenants) == 0 {
			return nil, fmt.Errorf("%s: tenants is required (a list of tenant slugs, or [\"*\"] for an admin)", where)
		}
		for _, tn := range t.Tenants {
			if tn == AllTenants {
				if t.Role != RoleAdmin || len(t.Tenants) != 1 {
					return nil, fmt.Errorf("%s: only an admin token may have the tenant scope \"*\", and alone", where)
				}
			} else if !slugRE.MatchString(tn) {
				return nil, fmt.Errorf("%s: tenant %q is not a lower-case slug", where, tn)
			}
		}
		if t.Actor != nil && (t.Actor.Type == "" || t.Actor.ID == "") {
			return nil, fmt.Errorf("%s: actor needs a type and an id", where)
		}
		if _, dup := ts.byHash[h]; dup {
			return nil, fmt.Errorf("%s: the same token is configured twice", where)
		}
		ts.byHash[h] = t
	}
	if len(ts.byHash) == 0 {
		return nil, errors.New("queryapi: no tokens configured")
	}
	return ts, nil
}

// Digest implements bearer.Entry.
func (t *Token) Digest() string { return t.SHA256 }

// authenticate finds the token presented in r (see bearer.Find).
func (ts *Tokens) authenticate(r *http.Request) (*Token, error) {
	t, _, err := bearer.Find(r, ts.byHash)
	return t, err
}
