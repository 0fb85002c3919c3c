package queryapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
)

// Access-log actions: every call to the API is written to the audit log as one of
// these, before any data is returned.
const (
	ActionSearched = "audit_log.searched"
	ActionExported = "audit_log.exported"
	ActionVerified = "audit_log.verified"
)

// Publisher makes events durable; kafka.Producer implements it.
type Publisher interface {
	// Publish returns one error per message; nil means acknowledged and durable.
	Publish(ctx context.Context, msgs []kafka.Message) []error
}

// Access describes one call for the access log.
type Access struct {
	// Token is the caller; nil for a call that did not authenticate.
	Token  *Token
	Action string
	// Tenants whose data the call reads; one access event is written to each
	// tenant's log, so every tenant sees who read its trail.
	Tenants []string
	// Status is success (the call is served), denied (no or wrong token, role or
	// tenant refused) or failure (bad input, a server error).
	Status string
	Reason string
	// Metadata: the endpoint, the query or statement, paging, format. String
	// values are untrusted: they are sanitised and redacted before use.
	Metadata map[string]any
}

// maxMetaChars bounds one metadata value (the schema allows 8192 characters); a
// longer value is cut by characters and its full SHA-256 kept so the exact text
// can be matched.
const maxMetaChars = 4096

// maxReasonChars bounds result.reason.
const maxReasonChars = 1000

// anonymous is the actor of calls without a valid token.
var anonymous = map[string]any{"type": event.ActorService, "id": "unauthenticated"}

// accessLog writes access events to the raw events topic, where they are chained
// like every other event.
type accessLog struct {
	pub            Publisher
	redactor       *redact.Redactor
	operatorTenant string
	now            func() time.Time
}

// ErrAccessLog means the access event could not be made durable; the call must not
// be served.
var ErrAccessLog = errors.New("queryapi: the access log is unavailable")

func (l *accessLog) record(ctx context.Context, a Access) error {
	tenants := a.Tenants
	if len(tenants) == 0 || (len(tenants) == 1 && tenants[0] == AllTenants) {
		tenants = []string{l.operatorTenant}
	}
	now := l.now()
	base := l.document(a, now)
	msgs := make([]kafka.Message, 0, len(tenants))
	for _, tenant := range tenants {
		b, err := accessEvent(base, tenant, now)
		if err != nil {
			return fmt.Errorf("queryapi: access event: %w", err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(tenant), Value: b})
	}
	for _, err := range l.pub.Publish(ctx, msgs) {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrAccessLog, err)
		}
	}
	return nil
}

// document builds the tenant-independent part of a call's access events. Every
// untrusted string goes through event.SanitizeText and then the redactor ingest
// uses, once per call however many tenants it reads.
func (l *accessLog) document(a Access, now time.Time) map[string]any {
	actor := anonymous
	meta := map[string]any{}
	if a.Token != nil {
		actor = map[string]any{"type": event.ActorService, "id": a.Token.Name}
		if act := a.Token.Actor; act != nil {
			actor = map[string]any{"type": act.Type, "id": act.ID}
			if act.Email != "" {
				actor["email"] = act.Email
			}
		}
		meta["token"], meta["role"] = a.Token.Name, string(a.Token.Role)
	}
	for k, v := range a.Metadata {
		if s, ok := v.(string); ok {
			clean, st := event.SanitizeText(s, maxMetaChars)
			if st.Changed() {
				sum := sha256.Sum256([]byte(s))
				meta[k+"_sha256"] = hex.EncodeToString(sum[:])
				meta[k+"_sanitized"] = st.Flags()
			}
			v = clean
		}
		if v != nil && v != "" {
			meta[k] = v
		}
	}
	result := map[string]any{"status": a.Status}
	if a.Reason != "" {
		result["reason"], _ = event.SanitizeText(a.Reason, maxReasonChars)
	}
	doc := map[string]any{
		"occurred_at": event.FormatTime(now),
		"source":      map[string]any{"tool": "trailkeep", "channel": "query_api"},
		"actor":       actor,
		"action":      a.Action,
		"result":      result,
		"metadata":    meta,
	}
	l.redactor.Document(doc)
	return doc
}

// accessEvent is the canonical access event of base for one tenant: stamped and
// passed through event.Canonicalize like any ingested event. base is not changed.
func accessEvent(base map[string]any, tenant string, now time.Time) ([]byte, error) {
	doc := make(map[string]any, len(base)+1)
	for k, v := range base {
		doc[k] = v
	}
	doc["resource"] = map[string]any{"type": "audit_log", "id": tenant}
	if err := (event.Stamp{Tenant: tenant, Tool: "trailkeep", ReceivedAt: now, Mapped: true}).Apply(doc); err != nil {
		return nil, err
	}
	_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
	return canon, err
}
