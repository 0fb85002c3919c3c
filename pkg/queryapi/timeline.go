package queryapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
	"github.com/trailkeep/trailkeep/pkg/versions"
)

// timeline answers GET /v1/timeline?resource=TYPE:ID[&at=T]: the resource's version
// changes, oldest first, within the caller's tenants, and with at the change that
// set the version in force then (pkg/versions, as trailctl timeline). Audited as a
// search.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request, c *call) {
	qv := r.URL.Query()
	resource, atText := qv.Get("resource"), qv.Get("at")
	meta := map[string]any{"resource": resource, "at": atText, "report": "timeline"}
	if !c.authorize(w, ActionSearched, RoleReader, meta) {
		return
	}
	q, err := versions.Query(resource)
	if err != nil {
		c.invalid(w, ActionSearched, meta, event.FieldError{Field: "resource", Rule: "format", Limit: "TYPE:ID", Message: err.Error()})
		return
	}
	now := s.o.Now()
	var at time.Time
	if atText != "" {
		if at, err = query.ParseTime(atText, now); err != nil {
			c.invalid(w, ActionSearched, meta, event.FieldError{Field: "at", Rule: "format", Limit: "RFC 3339, a date or -30d", Message: err.Error()})
			return
		}
	}
	f, err := query.Compile(q, now)
	if err != nil { // versions.Query quotes every value, so this is a bug
		c.fail(w, err)
		return
	}
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	req := clickhouse.SearchRequest{Filter: f, Tenants: c.tenants, Limit: clickhouse.MaxSearchLimit}
	entries, err := versions.Read(func() ([]clickhouse.Hit, bool, error) {
		hits, next, err := s.o.Store.Search(r.Context(), req)
		req.After = next
		return hits, next != nil && err == nil, err
	}, resource)
	var tm *versions.TooManyError
	if errors.As(err, &tm) {
		writeError(w, http.StatusUnprocessableEntity, "too_many_events", err.Error()+" with ?tenant=", nil)
		return
	}
	if err != nil {
		c.fail(w, err)
		return
	}
	history := versions.History(entries)
	if history == nil {
		history = []versions.Change{}
	}
	out := map[string]any{"resource": resource, "changes": history}
	if !at.IsZero() {
		out["at"] = event.FormatTime(at)
		if c, ok := versions.InForce(history, at); ok {
			out["in_force"] = c
		}
	}
	writeJSON(w, http.StatusOK, out)
}
