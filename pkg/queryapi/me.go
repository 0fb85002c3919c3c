package queryapi

import (
	"net/http"

	"github.com/trailkeep/trailkeep/pkg/event"
)

// me answers GET /v1/me: who the token is and what it may read (name, role,
// tenants, actor), so a client can say whose trail it shows and write the scope
// into an export's manifest. Audited like every call.
func (s *Server) me(w http.ResponseWriter, r *http.Request, c *call) {
	meta := map[string]any{"report": "me"}
	if !c.authorize(w, ActionSearched, RoleReader, meta) || !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	out := map[string]any{"name": c.tok.Name, "role": c.tok.Role, "tenants": c.tok.Tenants}
	if c.tok.Actor != nil {
		out["actor"] = c.tok.Actor
	}
	writeJSON(w, http.StatusOK, out)
}
