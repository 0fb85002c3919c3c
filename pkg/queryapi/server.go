// Package queryapi is trailkeep's read API: search, single events, inclusion
// proofs, the latest signed checkpoints, read-only SQL and streamed exports, for
// role-based tokens scoped to tenants.
//
// Every call is itself audited. Before any data is returned, an access event
// (audit_log.searched, audit_log.exported or audit_log.verified, with the token's
// identity as actor and the query in metadata) is produced to the raw events topic
// and acknowledged by Kafka, from where it is chained like any other event. If the
// access event cannot be made durable the call is refused with 503: nobody reads
// the audit trail without leaving a trace in it. Refused calls (wrong role or
// tenant, bad input) are audited too, with result denied or failure.
package queryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/console"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/proof"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/sqlscope"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Store is the stored log (a *clickhouse.Store). Required.
	Store Store
	// Tokens authenticates callers. Required.
	Tokens *Tokens
	// Publisher receives the access events (the raw events topic). Required.
	Publisher Publisher
	// OperatorTenant receives the access events of all-tenant admin tokens.
	// Default "trailkeep".
	OperatorTenant string
	// SQL bounds POST /v1/sql. Default 10000 rows, 30 s.
	SQL clickhouse.SQLLimits
	// MaxSQLBytes bounds the request body of POST /v1/sql. Default 64 KiB.
	MaxSQLBytes int64
	// Redactor masks secrets in the access events (query text, statements), as
	// ingest masks them in sent events. Default redact.New().
	Redactor *redact.Redactor
	// Registerer receives the metrics; default a private registry.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// MaxFollowersPerToken and MaxFollowers bound the GET /v1/follow calls that wait
	// for new records, per token and in all (each asks the store every second
	// while it waits); one more is answered 429. Defaults 4 and 256.
	MaxFollowersPerToken, MaxFollowers int
	// ProbeInterval and ProbeTimeout set how the store is watched: a ping every
	// interval; one that does not answer within the timeout marks the store down,
	// fails the calls waiting on it with 503 at once and makes Ready report it,
	// until a ping answers again. Defaults 250 ms and 1.5 s, so that a frozen
	// server is answered with 503 within 2 s.
	ProbeInterval, ProbeTimeout time.Duration
}

// Server serves the read API.
type Server struct {
	o         Options
	followers followers
	gate      *storeGate
	log       *accessLog
	mux       *http.ServeMux
	calls     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	auditFa   prometheus.Counter
}

// New returns a server; Handler serves it.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Tokens == nil || o.Publisher == nil {
		return nil, errors.New("queryapi: Store, Tokens and Publisher are required")
	}
	if o.OperatorTenant == "" {
		o.OperatorTenant = "trailkeep"
	}
	if !event.IsSlug(o.OperatorTenant) {
		return nil, fmt.Errorf("queryapi: operator tenant %q is not a slug", o.OperatorTenant)
	}
	if o.SQL.MaxRows <= 0 {
		o.SQL.MaxRows = 10000
	}
	if o.SQL.MaxTime <= 0 {
		o.SQL.MaxTime = 30 * time.Second
	}
	if o.MaxSQLBytes <= 0 {
		o.MaxSQLBytes = 64 << 10
	}
	if o.MaxFollowersPerToken <= 0 {
		o.MaxFollowersPerToken = 4
	}
	if o.MaxFollowers <= 0 {
		o.MaxFollowers = 256
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Redactor == nil {
		r, err := redact.New()
		if err != nil {
			return nil, fmt.Errorf("queryapi: %w", err)
		}
		o.Redactor = r
	}
	s := &Server{o: o, log: &accessLog{pub: o.Publisher, redactor: o.Redactor, operatorTenant: o.OperatorTenant, now: o.Now}, mux: http.NewServeMux(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailkeep_query_requests_total", Help: "Query API calls by endpoint and HTTP status."}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "trailkeep_query_request_seconds", Help: "Query API call duration until the response is complete.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"endpoint"}),
		auditFa: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailkeep_query_access_log_failures_total", Help: "Calls refused because their access event could not be made durable."}),
	}
	for _, c := range []prometheus.Collector{s.calls, s.latency, s.auditFa} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("queryapi: metrics: %w", err)
		}
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 250 * time.Millisecond
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 1500 * time.Millisecond
	}
	s.gate = newStoreGate(o.Store.Ping, o.ProbeInterval, o.ProbeTimeout)
	s.route("GET /v1/events", "events", s.searchEvents)
	s.route("GET /v1/events/{id}", "event", s.getEvent)
	s.route("GET /v1/events/{id}/proof", "proof", s.getProof)
	s.route("GET /v1/checkpoints/latest", "checkpoints", s.latestCheckpoints)
	s.route("POST /v1/sql", "sql", s.runSQL)
	s.route("GET /v1/export", "export", s.export)
	s.route("GET /v1/follow", "follow", s.follow)
	s.route("GET /v1/partitions", "partitions", s.partitions)
	s.route("GET /v1/partitions/{p}/checkpoints", "chain", s.partitionCheckpoints)
	s.route("GET /v1/partitions/{p}/seq-range", "chain", s.partitionSeqRange)
	s.route("GET /v1/partitions/{p}/records", "chain", s.partitionRecords)
	s.route("GET /v1/approvals", "approvals", s.approvals)
	s.route("GET /v1/drift", "drift", s.drift)
	s.route("GET /v1/timeline", "timeline", s.timeline)
	s.route("GET /v1/histogram", "histogram", s.histogram)
	s.route("GET /v1/queries", "queries", s.listQueries)
	s.route("GET /v1/me", "me", s.me)
	s.route("PUT /v1/queries/{name}", "query_saved", s.putQuery)
	s.route("DELETE /v1/queries/{name}", "query_deleted", s.deleteQuery)
	s.route("/v1/", "unknown", s.notFound)
	return s, nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.mux }

// Ready is nil while the store answers its probes (for /readyz).
func (s *Server) Ready() error { return s.gate.Err() }

// Close stops watching the store.
func (s *Server) Close() { s.gate.Close() }

// statusWriter records the status and, before the first byte of any response,
// makes sure the call's access event is durable: the audit-before-data rule holds
// for every path through a handler, including ones that forget to audit. When the
// access event cannot be written, the intended response is replaced by a 503.
type statusWriter struct {
	http.ResponseWriter
	code    int
	before  func(code int) bool
	blocked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code != 0 {
		return
	}
	if w.before != nil && !w.before(code) {
		w.blocked = true
		w.code = http.StatusServiceUnavailable
		w.ResponseWriter.Header().Del("Trailer")
		w.ResponseWriter.Header().Set("Retry-After", "5")
		writeJSON(w.ResponseWriter, http.StatusServiceUnavailable, errorBody{Error: "access_log_unavailable",
			Message: "the access log cannot record this call, so it is not served; retry later"})
		return
	}
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.blocked {
		return 0, ErrAccessLog
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.blocked {
		f.Flush()
	}
}

// endpointAction is the access-log action of an endpoint's calls.
var endpointAction = map[string]string{
	"events": ActionSearched, "event": ActionSearched, "follow": ActionSearched, "sql": ActionSearched, "approvals": ActionSearched, "drift": ActionSearched, "timeline": ActionSearched, "histogram": ActionSearched, "queries": ActionSearched, "me": ActionSearched,
	"query_saved": ActionQuerySaved, "query_deleted": ActionQueryDeleted, "unknown": ActionSearched,
	"proof": ActionVerified, "checkpoints": ActionVerified, "partitions": ActionVerified, "chain": ActionVerified, "export": ActionExported,
}

// statusOf is the access-event status of an HTTP answer.
func statusOf(code int) string {
	switch {
	case code < 400:
		return event.StatusSuccess
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return event.StatusDenied
	}
	return event.StatusFailure
}

// route registers h with authentication, metrics and the access-log guarantee:
// every request that reaches it — served, refused, unauthenticated or failed —
// produces exactly one access event before any byte of the answer.
func (s *Server) route(pattern, name string, h func(w http.ResponseWriter, r *http.Request, c *call)) {
	if endpointAction[name] == "" {
		// A call before authorization is audited under this action; without one
		// its access event is invalid and the call answers 503 unaudited.
		panic("queryapi: endpoint " + name + " has no access-log action in endpointAction")
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := s.gate.Context(r.Context())
		defer cancel()
		c := &call{s: s, endpoint: name, r: r.WithContext(ctx), reqCtx: r.Context(), action: endpointAction[name], meta: map[string]any{}}
		r = c.r
		sw := &statusWriter{ResponseWriter: w}
		sw.before = func(code int) bool {
			if !c.audited && c.auditErr == nil {
				c.audit(c.action, statusOf(code), http.StatusText(code), c.meta)
			}
			return c.audited
		}
		defer func() {
			s.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
			s.calls.WithLabelValues(name, strconv.Itoa(max(sw.code, 200))).Inc()
		}()
		sw.Header().Set("Cache-Control", "no-store")
		// Answers carry untrusted event text: never let a browser sniff one as HTML.
		sw.Header().Set("X-Content-Type-Options", "nosniff")
		tok, err := s.o.Tokens.authenticate(r)
		if err != nil {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="trailkeep"`)
			c.audit(c.action, event.StatusDenied, err.Error(), map[string]any{"path": r.URL.Path})
			writeError(sw, http.StatusUnauthorized, "unauthorized", err.Error(), nil)
			return
		}
		c.tok = tok
		h(sw, r, c)
		if sw.code == 0 { // the handler answered nothing: only a failed access event does that
			sw.WriteHeader(http.StatusServiceUnavailable)
		}
	})
}

// call is one request.
type call struct {
	s *Server
	// tok is the caller; nil until authenticated.
	tok      *Token
	endpoint string
	r        *http.Request
	// tenants is the effective scope: nil means every tenant (and, for the access
	// log, the operator tenant).
	tenants []string
	// reqCtx is the request's own context: the access event is written under it,
	// not under the store's, which is cancelled when the store goes down.
	reqCtx context.Context
	// action and meta describe the call for an access event the handler did not
	// write itself.
	action   string
	meta     map[string]any
	audited  bool
	auditErr error
}

// authorize checks the role and narrows the tenant scope to the request's
// ?tenant= values. A refusal is audited (result denied) and answered 403.
func (c *call) authorize(w http.ResponseWriter, action string, need Role, meta map[string]any) bool {
	c.action, c.meta = action, meta
	asked := c.r.URL.Query()["tenant"]
	scope := c.tok.Tenants
	if c.tok.All() {
		scope = nil
	}
	for _, t := range asked {
		if !event.IsSlug(t) {
			c.tenants = scope
			c.invalid(w, action, meta, event.FieldError{Field: "tenant", Rule: "pattern", Limit: event.SlugPattern, Message: fmt.Sprintf("tenant %q is not a tenant slug", t)})
			return false
		}
	}
	var reason string
	switch {
	case c.tok.Role.rank() < need.rank():
		reason = fmt.Sprintf("this call needs the %s role; token %q has %s", need, c.tok.Name, c.tok.Role)
	default:
		for _, t := range asked {
			if scope != nil && !slices.Contains(scope, t) {
				reason = fmt.Sprintf("token %q may not read tenant %q", c.tok.Name, t)
				break
			}
		}
	}
	if len(asked) > 0 {
		scope = asked
	}
	c.tenants = scope
	if reason != "" {
		c.audit(action, event.StatusDenied, reason, meta)
		writeError(w, http.StatusForbidden, "forbidden", reason, nil)
		return false
	}
	return true
}

// scopeList is the tenants the access event is written to.
func (c *call) scopeList() []string {
	if c.tenants == nil {
		return []string{AllTenants}
	}
	return c.tenants
}

// audit writes the call's one access event; false when it could not be made
// durable, in which case the call must not be served (the route answers 503). A
// second call does nothing: a request has exactly one access event.
func (c *call) audit(action, status, reason string, meta map[string]any) bool {
	if c.audited {
		return true
	}
	if c.auditErr != nil {
		return false
	}
	m := map[string]any{"endpoint": c.endpoint}
	if v := c.r.Header.Get(console.ViewHeader); v != "" {
		m["console_view"] = v // untrusted text: sanitised and bounded like every value
	}
	for k, v := range meta {
		m[k] = v
	}
	ctx, cancel := context.WithTimeout(c.reqCtx, 15*time.Second)
	defer cancel()
	err := c.s.log.record(ctx, Access{Token: c.tok, Action: action, Tenants: c.scopeList(), Status: status, Reason: reason, Metadata: m})
	if err != nil {
		c.auditErr = err
		c.s.auditFa.Inc()
		name := ""
		if c.tok != nil {
			name = c.tok.Name
		}
		c.s.o.Logger.Error("access event not written; call refused", "token", name, "endpoint", c.endpoint, "err", err)
		return false
	}
	c.audited = true
	return true
}

// invalid audits and answers a 400 for bad input.
func (c *call) invalid(w http.ResponseWriter, action string, meta map[string]any, fe event.FieldError) {
	c.audit(action, event.StatusFailure, fe.Message, meta)
	writeError(w, http.StatusBadRequest, "invalid_request", fe.Message, []event.FieldError{fe})
}

// fail answers a store error: 503 when the store is unreachable.
func (c *call) fail(w http.ResponseWriter, err error) {
	if cause := context.Cause(c.r.Context()); errors.Is(cause, errStoreDown) {
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the audit store does not answer; retry later", nil)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	c.s.o.Logger.Error("query failed", "endpoint", c.endpoint, "token", c.tok.Name, "err", err)
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the audit store did not answer; retry later", nil)
}

func queryError(field string, err error) event.FieldError {
	var qe *query.Error
	if errors.As(err, &qe) {
		return event.FieldError{Field: field, Rule: "syntax", Limit: "column " + strconv.Itoa(qe.Pos+1), Message: err.Error()}
	}
	return event.FieldError{Field: field, Rule: "syntax", Message: err.Error()}
}

// compile reads ?q= (empty: every event).
func compile(r *http.Request, now time.Time) (string, query.Filter, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" || q == "*" {
		return q, query.Filter{}, nil
	}
	f, err := query.Compile(q, now)
	return q, f, err
}

type eventJSON struct {
	Partition int32           `json:"partition"`
	Seq       uint64          `json:"seq"`
	ChainedAt string          `json:"chained_at"`
	LeafHash  string          `json:"leaf_hash"`
	Event     json.RawMessage `json:"event"`
}

// pageLimit reads a limit= parameter: 100 when absent, else a whole number from 1 to
// clickhouse.MaxSearchLimit.
func pageLimit(v string) (int, *event.FieldError) {
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > clickhouse.MaxSearchLimit {
		return 0, &event.FieldError{Field: "limit", Rule: "range", Limit: "1.." + strconv.Itoa(clickhouse.MaxSearchLimit),
			Message: fmt.Sprintf("limit must be a whole number from 1 to %d", clickhouse.MaxSearchLimit)}
	}
	return n, nil
}

// searchArgs authorizes a reader's search-shaped call (events, approvals, drift)
// and reads its filter (q) and page limit; on false it has answered and audited.
func (s *Server) searchArgs(w http.ResponseWriter, r *http.Request, c *call, meta map[string]any) (query.Filter, int, bool) {
	if !c.authorize(w, ActionSearched, RoleReader, meta) {
		return query.Filter{}, 0, false
	}
	_, f, err := compile(r, s.o.Now())
	if err != nil {
		c.invalid(w, ActionSearched, meta, queryError("q", err))
		return query.Filter{}, 0, false
	}
	limit, fe := pageLimit(r.URL.Query().Get("limit"))
	if fe != nil {
		c.invalid(w, ActionSearched, meta, *fe)
		return query.Filter{}, 0, false
	}
	return f, limit, true
}

// GET /v1/events?q=&limit=&cursor=&tenant=
func (s *Server) searchEvents(w http.ResponseWriter, r *http.Request, c *call) {
	qv := r.URL.Query()
	meta := map[string]any{"query": qv.Get("q"), "limit": qv.Get("limit"), "cursor": qv.Get("cursor")}
	f, limit, ok := s.searchArgs(w, r, c, meta)
	if !ok {
		return
	}
	req := clickhouse.SearchRequest{Filter: f, Tenants: c.tenants, Limit: limit}
	if cur := qv.Get("cursor"); cur != "" {
		cc, err := clickhouse.ParseCursor(cur)
		if err != nil {
			c.invalid(w, ActionSearched, meta, event.FieldError{Field: "cursor", Rule: "format", Message: err.Error()})
			return
		}
		req.After = &cc
	}
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	hits, next, err := s.o.Store.Search(r.Context(), req)
	if err != nil {
		c.fail(w, err)
		return
	}
	resp := struct {
		Events     []eventJSON `json:"events"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Events: make([]eventJSON, 0, len(hits))}
	for _, h := range hits {
		resp.Events = append(resp.Events, eventJSON{Partition: h.Partition, Seq: h.Seq, ChainedAt: event.FormatTime(h.ChainedAt), LeafHash: h.LeafHash, Event: h.Event})
	}
	if next != nil {
		resp.NextCursor = next.String()
	}
	writeJSON(w, http.StatusOK, resp)
}

// record finds {id} in the caller's scope, answering 404 when it is not there.
func (c *call) record(w http.ResponseWriter, id string) (chain.Record, bool) {
	rec, err := c.s.o.Store.RecordByID(c.r.Context(), id, c.tenants)
	if errors.Is(err, clickhouse.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no event %q in the tenants this token may read", id), nil)
		return rec, false
	}
	if err != nil {
		c.fail(w, err)
		return rec, false
	}
	return rec, true
}

// GET /v1/events/{id}
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	meta := map[string]any{"event_id": id}
	if !c.authorize(w, ActionSearched, RoleReader, meta) || !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	rec, ok := c.record(w, id)
	if !ok {
		return
	}
	b, err := rec.MarshalJSON()
	if err != nil {
		c.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// GET /v1/events/{id}/proof[?checkpoint=latest]
func (s *Server) getProof(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	which := r.URL.Query().Get("checkpoint")
	meta := map[string]any{"event_id": id, "checkpoint": which}
	if !c.authorize(w, ActionVerified, RoleReader, meta) {
		return
	}
	if which != "" && which != "first" && which != "latest" {
		c.invalid(w, ActionVerified, meta, event.FieldError{Field: "checkpoint", Rule: "enum", Limit: "first, latest", Message: "checkpoint must be first (default: the first covering the event) or latest"})
		return
	}
	if !c.audit(ActionVerified, event.StatusSuccess, "", meta) {
		return
	}
	rec, ok := c.record(w, id)
	if !ok {
		return
	}
	ctx := r.Context()
	b, err := proof.ForRecord(ctx, s.o.Store, rec, which == "latest")
	var nc *proof.NotCoveredError
	if errors.As(err, &nc) {
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusConflict, "not_covered_yet", fmt.Sprintf("event %s (%v)", id, nc), nil)
		return
	}
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// GET /v1/checkpoints/latest
func (s *Server) latestCheckpoints(w http.ResponseWriter, r *http.Request, c *call) {
	meta := map[string]any{}
	if !c.authorize(w, ActionVerified, RoleReader, meta) || !c.audit(ActionVerified, event.StatusSuccess, "", meta) {
		return
	}
	ctx := r.Context()
	all, err := s.o.Store.LatestCheckpoints(ctx)
	if err != nil {
		c.fail(w, err)
		return
	}
	var parts []int32
	if c.tenants != nil { // only the partitions holding the caller's tenants
		if parts, err = s.o.Store.Partitions(ctx, c.tenants); err != nil {
			c.fail(w, err)
			return
		}
	} else {
		for p := range all {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	type cpJSON struct {
		Partition  int32  `json:"partition"`
		Origin     string `json:"origin"`
		TreeSize   uint64 `json:"tree_size"`
		RootHash   string `json:"root_hash"`
		Checkpoint string `json:"checkpoint"`
		// StoredAt is when the checkpoint was stored (the writer's clock, not signed).
		StoredAt string `json:"stored_at,omitempty"`
	}
	out := struct {
		Checkpoints []cpJSON `json:"checkpoints"`
	}{Checkpoints: []cpJSON{}}
	for _, p := range parts {
		sc, ok := all[p]
		if !ok {
			continue
		}
		cp, err := sc.Unverified()
		if err != nil {
			c.fail(w, err)
			return
		}
		j := cpJSON{Partition: p, Origin: cp.Origin, TreeSize: cp.Size, RootHash: cp.Root.String(), Checkpoint: string(sc.Note)}
		if !sc.StoredAt.IsZero() {
			j.StoredAt = event.FormatTime(sc.StoredAt)
		}
		out.Checkpoints = append(out.Checkpoints, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// POST /v1/sql {"sql": "...", "max_rows": N}
func (s *Server) runSQL(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		SQL     string `json:"sql"`
		MaxRows int    `json:"max_rows"`
	}
	raw, rerr := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxSQLBytes))
	derr := json.Unmarshal(raw, &body)
	meta := map[string]any{"sql": body.SQL}
	if !c.authorize(w, ActionSearched, RoleAuditor, meta) {
		return
	}
	switch {
	case rerr != nil:
		c.invalid(w, ActionSearched, meta, event.FieldError{Field: "", Rule: "maxLength", Limit: strconv.FormatInt(s.o.MaxSQLBytes, 10), Message: fmt.Sprintf("the request body must be at most %d bytes", s.o.MaxSQLBytes)})
		return
	case derr != nil:
		c.invalid(w, ActionSearched, meta, event.FieldError{Field: "", Rule: "type", Message: `the body must be JSON: {"sql": "SELECT ...", "max_rows": 1000}`})
		return
	case body.MaxRows < 0 || body.MaxRows > s.o.SQL.MaxRows:
		c.invalid(w, ActionSearched, meta, event.FieldError{Field: "/max_rows", Rule: "range", Limit: "1.." + strconv.Itoa(s.o.SQL.MaxRows), Message: fmt.Sprintf("max_rows must be from 1 to %d", s.o.SQL.MaxRows)})
		return
	}
	scope := s.o.Store.SQLScope(c.tenants)
	stmt, err := scope.Rewrite(body.SQL)
	if err != nil {
		var se *sqlscope.Error
		fe := event.FieldError{Field: "/sql", Rule: "scope", Message: err.Error()}
		if errors.As(err, &se) && se.Token != "" {
			fe.Limit = "offset " + strconv.Itoa(se.Pos)
		}
		c.invalid(w, ActionSearched, meta, fe)
		return
	}
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	lim := s.o.SQL
	if body.MaxRows > 0 {
		lim.MaxRows = body.MaxRows
	}
	resp := struct {
		Columns   []clickhouse.Column `json:"columns"`
		Rows      [][]any             `json:"rows"`
		Truncated bool                `json:"truncated"`
	}{Rows: [][]any{}}
	resp.Truncated, err = s.o.Store.ReadOnly(r.Context(), stmt, lim, func(cols []clickhouse.Column) error { resp.Columns = cols; return nil },
		func(row []any) error { resp.Rows = append(resp.Rows, row); return nil })
	if err != nil {
		var le *clickhouse.LimitError
		if errors.As(err, &le) {
			writeError(w, http.StatusBadRequest, "invalid_request", "the statement was stopped by a limit", []event.FieldError{{Field: "/sql", Rule: "limit", Limit: le.Limit, Message: le.Error()}})
			return
		}
		if code, msg, ok := clickhouse.QueryError(err); ok {
			rule := "sql" // exceeded limits arrive as a LimitError, above
			if code == clickhouse.CodeReadonly {
				rule = "readonly"
			}
			writeError(w, http.StatusBadRequest, "invalid_request", "ClickHouse rejected the statement", []event.FieldError{{Field: "/sql", Rule: rule, Limit: fmt.Sprintf("code %d", code), Message: msg}})
			return
		}
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// GET /v1/export?q=&format=ndjson|json|csv|ocsf
//
// The body streams; X-Trailkeep-Rows and X-Trailkeep-Sha256 follow as trailers. A
// failure after the first byte aborts the connection, so a client never mistakes a
// cut export for a complete one.
func (s *Server) export(w http.ResponseWriter, r *http.Request, c *call) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "ndjson"
	}
	meta := map[string]any{"query": r.URL.Query().Get("q"), "format": format}
	if !c.authorize(w, ActionExported, RoleAuditor, meta) {
		return
	}
	_, f, err := compile(r, s.o.Now())
	if err != nil {
		c.invalid(w, ActionExported, meta, queryError("q", err))
		return
	}
	if !slices.Contains(export.Formats, format) {
		c.invalid(w, ActionExported, meta, event.FieldError{Field: "format", Rule: "enum", Limit: strings.Join(export.Formats, ", "), Message: "format must be one of " + strings.Join(export.Formats, ", ")})
		return
	}
	if !c.audit(ActionExported, event.StatusSuccess, "", meta) {
		return
	}
	tr := export.NewTracker(meta["query"].(string), c.tenants, format, c.tok.Name, s.o.Now())
	enc, _ := export.NewEncoder(format, tr.Writer(w))
	w.Header().Set("Content-Type", export.ContentType(format))
	w.Header().Set("Trailer", "X-Trailkeep-Rows, X-Trailkeep-Sha256")
	started := false
	err = s.o.Store.Export(r.Context(), clickhouse.ExportRequest{Filter: f, Tenants: c.tenants}, func(rec chain.Record) error {
		started = true
		return tr.Encode(enc, rec)
	})
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		if !started {
			c.fail(w, err)
			return
		}
		s.o.Logger.Error("export aborted", "token", c.tok.Name, "rows", tr.Rows(), "err", err)
		panic(http.ErrAbortHandler)
	}
	m := tr.Finish("")
	w.Header().Set("X-Trailkeep-Rows", strconv.FormatUint(m.Rows, 10))
	w.Header().Set("X-Trailkeep-Sha256", m.File.SHA256)
}

type errorBody struct {
	Error   string             `json:"error"`
	Message string             `json:"message"`
	Errors  []event.FieldError `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string, errs []event.FieldError) {
	writeJSON(w, status, errorBody{Error: code, Message: msg, Errors: errs})
}

// writeJSON encodes without HTML escaping: json.Marshal would rewrite < > & inside
// the canonical event bytes of a record and so break its leaf hash.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":"internal","message":"could not encode the response"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// notFound answers a path under /v1/ that no endpoint serves; like every call it
// is audited.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, c *call) {
	c.meta = map[string]any{"path": r.URL.Path, "method": r.Method}
	if !c.tok.All() {
		c.tenants = c.tok.Tenants
	}
	writeError(w, http.StatusNotFound, "not_found", "no endpoint "+r.Method+" "+r.URL.Path, nil)
}
