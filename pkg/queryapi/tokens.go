package queryapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/trailkeep/trailkeep/pkg/bearer"
	"github.com/trailkeep/trailkeep/pkg/event"
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
	// ExpiresAt, when set (RFC 3339), ends the token: from that instant every
	// request with it is refused with 401.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Actor is who a token speaks for.
type Actor struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Email string `json:"email,omitempty"`
}

// actorID is who the token speaks for, as type:id (saved_by of a saved query).
func (t *Token) actorID() string {
	if t.Actor != nil {
		return t.Actor.Type + ":" + t.Actor.ID
	}
	return "service:" + t.Name
}

// All reports whether the token reads every tenant.
func (t *Token) All() bool { return slices.Contains(t.Tenants, AllTenants) }

// Tokens is the set of tokens in force. Reload replaces it whole (a token removed
// from the file is revoked); every request is checked against the set and the
// expiry in force at that moment.
type Tokens struct {
	set atomic.Pointer[map[[32]byte]*Token]
	now func() time.Time
}

// ParseTokens reads {"tokens": [Token...]}.
func ParseTokens(data []byte) (*Tokens, error) {
	m, err := parseTokens(data)
	if err != nil {
		return nil, err
	}
	ts := &Tokens{now: time.Now}
	ts.set.Store(&m)
	return ts, nil
}

// Reload replaces the tokens in force with those in data. On an error the tokens
// in force stay as they are.
func (ts *Tokens) Reload(data []byte) error {
	m, err := parseTokens(data)
	if err != nil {
		return err
	}
	ts.set.Store(&m)
	return nil
}

// Len is the number of tokens in force.
func (ts *Tokens) Len() int { return len(*ts.set.Load()) }

func parseTokens(data []byte) (map[[32]byte]*Token, error) {
	return bearer.ParseConfig(data, "queryapi", `{"tokens":[{"name","sha256","role","tenants"}]}`, checkToken)
}

// checkToken validates one configured read token.
func checkToken(t *Token) error {
	if t.Name == "" {
		return errors.New("a name is required")
	}
	if t.Role.rank() == 0 {
		return errors.New("role must be reader, auditor or admin")
	}
	if len(t.Tenants) == 0 {
		return errors.New(`tenants is required (a list of tenant slugs, or ["*"] for an admin)`)
	}
	for _, tn := range t.Tenants {
		if tn == AllTenants {
			if t.Role != RoleAdmin || len(t.Tenants) != 1 {
				return errors.New(`only an admin token may have the tenant scope "*", and alone`)
			}
		} else if !event.IsSlug(tn) {
			return fmt.Errorf("tenant %q is not a lower-case slug", tn)
		}
	}
	if t.Actor != nil && (t.Actor.Type == "" || t.Actor.ID == "") {
		return errors.New("actor needs a type and an id")
	}
	return nil
}

// TokenName names the token in configuration errors.
func (t *Token) TokenName() string { return t.Name }

// Digest implements bearer.Entry.
func (t *Token) Digest() string { return t.SHA256 }

// authenticate finds the token presented in r (see bearer.Find).
func (ts *Tokens) authenticate(r *http.Request) (*Token, error) {
	t, _, err := bearer.Find(r, *ts.set.Load())
	if err != nil {
		return nil, err
	}
	if t.ExpiresAt != nil && !ts.now().Before(*t.ExpiresAt) {
		return nil, fmt.Errorf("token %q expired at %s", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// WatchFile reloads ts from path whenever the file changes (checked every
// interval) and whenever reload receives a value (cmd/query sends one on SIGHUP),
// until ctx ends. A file that does not parse is logged and the tokens in force
// stay.
func (ts *Tokens) WatchFile(ctx context.Context, path string, interval time.Duration, reload <-chan struct{}, log *slog.Logger) {
	var last []byte // the first check reloads: the file may have changed since it was parsed
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-reload:
			forced = true
		}
		data, err := os.ReadFile(path)
		if err != nil {
			log.Error("query tokens not reloaded; the tokens in force stay", "file", path, "err", err)
			continue
		}
		if !forced && bytes.Equal(data, last) {
			continue
		}
		last = data
		if err := ts.Reload(data); err != nil {
			log.Error("query tokens not reloaded; the tokens in force stay", "file", path, "err", err)
			continue
		}
		log.Info("query tokens reloaded", "file", path, "tokens", ts.Len())
	}
}
