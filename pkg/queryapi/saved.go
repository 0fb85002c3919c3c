package queryapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Saved-query actions: saving and deleting change what others run, so they are
// audited under their own names.
const (
	ActionQuerySaved   = "audit_log.query_saved"
	ActionQueryDeleted = "audit_log.query_deleted"
)

// maxSavedBody bounds PUT /v1/queries/{name}: a query and its description.
const maxSavedBody = 16 << 10

// listQueries answers GET /v1/queries[?tenant=]: the saved queries of the
// caller's tenants (an all-tenant token names the tenants it wants).
func (s *Server) listQueries(w http.ResponseWriter, r *http.Request, c *call) {
	meta := map[string]any{"report": "saved_queries"}
	if !c.authorize(w, ActionSearched, RoleReader, meta) {
		return
	}
	if c.tenants == nil {
		c.invalid(w, ActionSearched, meta, event.FieldError{Field: "tenant", Rule: "required", Message: "an all-tenant token lists the saved queries of the tenants it names with ?tenant="})
		return
	}
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	out := []clickhouse.SavedQuery{}
	for _, t := range c.tenants {
		qs, err := s.o.Store.SavedQueries(r.Context(), t)
		if err != nil {
			c.fail(w, err)
			return
		}
		out = append(out, qs...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"queries": out})
}

// savedTarget authorizes a change to saved query {name} of exactly one tenant.
func (s *Server) savedTarget(w http.ResponseWriter, c *call, action string, meta map[string]any) (tenant, name string, ok bool) {
	name = c.r.PathValue("name")
	meta["name"] = name
	if !c.authorize(w, action, RoleAuditor, meta) {
		return "", "", false
	}
	switch {
	case !event.IsSlug(name):
		c.invalid(w, action, meta, event.FieldError{Field: "name", Rule: "pattern", Limit: event.SlugPattern, Message: fmt.Sprintf("saved query name %q must be a lower-case slug", name)})
		return "", "", false
	case len(c.tenants) != 1:
		c.invalid(w, action, meta, event.FieldError{Field: "tenant", Rule: "required", Message: "name exactly one tenant with ?tenant= (the token reads more than one)"})
		return "", "", false
	}
	return c.tenants[0], name, true
}

// putQuery answers PUT /v1/queries/{name}?tenant= with {"query", "description"}:
// saves (or replaces) the tenant's query, which must compile.
func (s *Server) putQuery(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		Query       string `json:"query"`
		Description string `json:"description"`
	}
	raw, rerr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSavedBody))
	derr := json.Unmarshal(raw, &body)
	meta := map[string]any{"query": body.Query, "description": body.Description}
	tenant, name, ok := s.savedTarget(w, c, ActionQuerySaved, meta)
	if !ok {
		return
	}
	switch {
	case rerr != nil:
		c.invalid(w, ActionQuerySaved, meta, event.FieldError{Rule: "maxLength", Limit: fmt.Sprint(maxSavedBody), Message: fmt.Sprintf("the request body must be at most %d bytes", maxSavedBody)})
		return
	case derr != nil:
		c.invalid(w, ActionQuerySaved, meta, event.FieldError{Rule: "type", Message: `the body must be JSON: {"query": "event:skill.*", "description": "..."}`})
		return
	case len([]rune(body.Description)) > 256:
		c.invalid(w, ActionQuerySaved, meta, event.FieldError{Field: "/description", Rule: "maxLength", Limit: "256", Message: "description must be at most 256 characters"})
		return
	}
	if _, err := query.Compile(body.Query, s.o.Now()); err != nil {
		c.invalid(w, ActionQuerySaved, meta, queryError("/query", err))
		return
	}
	if !c.audit(ActionQuerySaved, event.StatusSuccess, "", meta) {
		return
	}
	sq := clickhouse.SavedQuery{Tenant: tenant, Name: name, Query: body.Query, Description: body.Description, SavedBy: c.tok.actorID(), SavedAt: s.o.Now()}
	if err := s.o.Store.SaveQuery(r.Context(), sq); err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sq)
}

// deleteQuery answers DELETE /v1/queries/{name}?tenant=.
func (s *Server) deleteQuery(w http.ResponseWriter, r *http.Request, c *call) {
	meta := map[string]any{}
	tenant, name, ok := s.savedTarget(w, c, ActionQueryDeleted, meta)
	if !ok || !c.audit(ActionQueryDeleted, event.StatusSuccess, "", meta) {
		return
	}
	err := s.o.Store.DeleteQuery(r.Context(), tenant, name, c.tok.actorID())
	if errors.Is(err, clickhouse.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("tenant %s has no saved query %q", tenant, name), nil)
		return
	}
	if err != nil {
		c.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
