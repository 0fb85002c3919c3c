package queryapi

import (
	"encoding/csv"
	"net/http"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// approvals answers GET /v1/approvals?q=&limit=&format=json|csv: the approvals report
// (clickhouse.Approvals) over the caller's tenants, audited like every read.
func (s *Server) approvals(w http.ResponseWriter, r *http.Request, c *call) {
	qv := r.URL.Query()
	meta := map[string]any{"query": qv.Get("q"), "limit": qv.Get("limit"), "format": qv.Get("format"), "report": "approvals"}
	f, limit, ok := s.searchArgs(w, r, c, meta)
	if !ok {
		return
	}
	req := clickhouse.ApprovalsRequest{Filter: f, Tenants: c.tenants, Limit: limit}
	format := qv.Get("format")
	if format != "" && format != "json" && format != "csv" {
		c.invalid(w, ActionSearched, meta, event.FieldError{Field: "format", Rule: "enum", Limit: "json, csv", Message: "format must be json or csv"})
		return
	}
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	calls, err := s.o.Store.Approvals(r.Context(), req)
	if err != nil {
		c.fail(w, err)
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		cw := csv.NewWriter(w)
		cw.Write(clickhouse.ApprovalColumns)
		for _, a := range calls {
			row := a.Row()
			for i := range row {
				row[i] = export.SafeCell(row[i])
			}
			cw.Write(row)
		}
		cw.Flush()
		return
	}
	if calls == nil {
		calls = []clickhouse.Approval{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": calls})
}

// drift answers GET /v1/drift?q=&limit=&unapproved=true: the tool calls over the
// caller's tenants whose executed parameters are not among the approved ones
// (clickhouse.FindDrift), audited like every read.
func (s *Server) drift(w http.ResponseWriter, r *http.Request, c *call) {
	qv := r.URL.Query()
	meta := map[string]any{"query": qv.Get("q"), "limit": qv.Get("limit"), "unapproved": qv.Get("unapproved"), "report": "drift"}
	f, limit, ok := s.searchArgs(w, r, c, meta)
	if !ok {
		return
	}
	unapproved := false
	switch qv.Get("unapproved") {
	case "", "false":
	case "true":
		unapproved = true
	default:
		c.invalid(w, ActionSearched, meta, event.FieldError{Field: "unapproved", Rule: "enum", Limit: "true, false", Message: "unapproved must be true or false"})
		return
	}
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	found, err := s.o.Store.FindDrift(r.Context(), clickhouse.DriftRequest{Filter: f, Tenants: c.tenants, Unapproved: unapproved, Limit: limit})
	if err != nil {
		c.fail(w, err)
		return
	}
	if found == nil {
		found = []clickhouse.Drift{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"drift": found})
}
