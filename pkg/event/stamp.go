package event

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// Stamp holds the fields only the server may set. Ingest applies it to every
// decoded document before [Canonicalize]; the chainer never does.
type Stamp struct {
	// Tenant is the tenant bound to the sender's token. A body that names a
	// different tenant is rejected rather than silently re-attributed.
	Tenant string
	// Tool is the source tool the token is scoped to (claude_code,
	// registry, ...). It fills source.tool when the body has none; a body
	// that names another tool is rejected.
	Tool string
	// ReceivedAt is the time ingest received the request.
	ReceivedAt time.Time
	// ID is the event id to assign; empty means a fresh UUIDv7.
	ID string
	// IPKey is the tenant's HMAC key for client IP addresses. An actor.ip in
	// the body is replaced by actor.ip_hmac; without a key it is rejected, so
	// a raw address can never reach storage.
	IPKey []byte
	// Mapped says the document was built by one of trailkeep's source mappers
	// (the Claude Code hook adapter) from a payload that has no canonical fields of
	// its own; such a mapper may set server-owned fields itself (redactions). A
	// document a sender wrote (canonical events, CloudEvents data) may not: every
	// field of [ServerOwned] it carries is rejected.
	Mapped bool
}

// HasIdempotencyKey reports whether doc will carry an idempotency key once
// stamped: the sender's idempotency_key, or its client id, which [Stamp.Apply]
// moves there.
func HasIdempotencyKey(doc map[string]any) bool {
	_, key := doc["idempotency_key"]
	_, id := doc["id"]
	return key || id
}

// Apply sets id, schema_version, tenant, received_at and (if missing)
// occurred_at on doc, moves a client-supplied id to idempotency_key and
// replaces actor.ip by its HMAC.
func (s Stamp) Apply(doc map[string]any) error {
	var errs []FieldError
	if cid, ok := doc["id"]; ok {
		switch v := cid.(type) {
		case string:
			if _, set := doc["idempotency_key"]; !set {
				doc["idempotency_key"] = v
			}
		default:
			errs = append(errs, FieldError{Field: "/id", Rule: "type", Limit: "string", Message: "a client id must be a string; it becomes the idempotency key"})
		}
	}
	id := s.ID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("event: new UUIDv7: %w", err)
		}
		id = u.String()
	}
	doc["id"] = id
	if _, ok := doc["schema_version"]; !ok {
		doc["schema_version"] = schemaVersionValue
	}
	if t, ok := doc["tenant"]; ok && t != s.Tenant {
		errs = append(errs, FieldError{Field: "/tenant", Rule: RuleServerField, Limit: s.Tenant,
			Message: fmt.Sprintf("must be %q, the tenant of the token (or be omitted)", s.Tenant)})
	}
	doc["tenant"] = s.Tenant
	switch src := doc["source"].(type) {
	case nil:
		if s.Tool != "" {
			doc["source"] = map[string]any{"tool": s.Tool}
		}
	case map[string]any:
		if tool, ok := src["tool"]; !ok && s.Tool != "" {
			src["tool"] = s.Tool
		} else if ok && s.Tool != "" && tool != s.Tool {
			errs = append(errs, FieldError{Field: "/source/tool", Rule: RuleServerField, Limit: s.Tool,
				Message: fmt.Sprintf("must be %q, the source of the token (or be omitted)", s.Tool)})
		}
	}
	if !s.Mapped {
		errs = append(errs, checkServerOwned(doc)...)
	}
	rcv := FormatTime(s.ReceivedAt)
	doc["received_at"] = rcv
	if _, ok := doc["occurred_at"]; !ok {
		doc["occurred_at"] = rcv
	}
	if actor, ok := doc["actor"].(map[string]any); ok {
		if raw, ok := actor["ip"]; ok {
			if fe := s.hashIP(actor, raw); fe != nil {
				errs = append(errs, *fe)
			}
		}
	}
	if len(errs) > 0 {
		return newValidationError(errs...)
	}
	return nil
}

func (s Stamp) hashIP(actor map[string]any, raw any) *FieldError {
	str, _ := raw.(string)
	addr, err := netip.ParseAddr(str)
	if err != nil {
		return &FieldError{Field: "/actor/ip", Rule: "format", Limit: "ip", Message: "must be an IPv4 or IPv6 address"}
	}
	if len(s.IPKey) == 0 {
		return &FieldError{Field: "/actor/ip", Rule: RuleServerField,
			Message: "raw IP addresses are never stored and no IP HMAC key is configured for this tenant"}
	}
	delete(actor, "ip")
	actor["ip_hmac"] = HashIP(s.IPKey, addr)
	return nil
}

// HashIP is the stored form of a client address: lower-case hex
// HMAC-SHA256 over its canonical text (IPv4-mapped IPv6 unmapped, zone
// dropped), so the same client hashes the same however it was written.
func HashIP(key []byte, addr netip.Addr) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(addr.Unmap().WithZone("").String()))
	return hex.EncodeToString(m.Sum(nil))
}

// schemaVersionValue is SchemaVersion as a decoded document holds it, boxed once
// rather than for every event.
var schemaVersionValue any = float64(SchemaVersion)
