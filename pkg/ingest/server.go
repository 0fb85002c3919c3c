package ingest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"

	"github.com/trailkeep/trailkeep/internal/parallel"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/claudecode"
	"github.com/trailkeep/trailkeep/pkg/source/cloudevents"
)

// Publisher makes canonical events durable. kafka.Producer implements it.
type Publisher interface {
	// Publish returns one error per message; nil means acknowledged and durable.
	Publish(ctx context.Context, msgs []kafka.Message) []error
	// Ready reports whether the publisher currently reaches its broker.
	Ready() bool
	// Buffered reports messages handed over but not yet acknowledged.
	Buffered() int64
}

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Tokens authenticates senders. Required.
	Tokens *Tokens
	// Publisher receives canonical events. Required.
	Publisher Publisher
	// Redactor masks secrets. Required.
	Redactor *redact.Redactor
	// IPKey is the master secret from which each tenant's HMAC key for client IP
	// addresses is derived (HMAC-SHA256(IPKey, "trailkeep/ip/v1/"+tenant)), so a
	// leaked per-tenant digest set cannot be joined across tenants. Required.
	IPKey []byte
	// PromptTextTenants lists tenants that opted in to storing prompt text
	// (redacted); all others get digest + length only.
	PromptTextTenants []string
	// OTLPSample thins high-volume OpenTelemetry events per tenant: tenant ("*" for
	// every tenant) -> bare event name (api_request) -> the fraction stored, 0 to 1.
	// The choice is deterministic per record (session, sequence, time), so a retried
	// export keeps or drops the same records. Empty: everything is stored.
	OTLPSample map[string]map[string]float64
	// TrustedProxies are the networks whose X-Forwarded-For is believed when
	// taking the client address. Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds a request body. Default 5 MiB.
	MaxBodyBytes int64
	// MaxInFlightBytes bounds the request bodies being read or processed at once,
	// summed over all connections. A request reserves its Content-Length (or
	// MaxBodyBytes when the length is not declared) before any byte of its body is
	// read, and is answered 503 with Retry-After when the reservation does not fit:
	// memory then stays bounded at any concurrency instead of growing with it.
	// Default 6 MiB: a body byte costs about 35 bytes of heap while it is decoded,
	// redacted and canonicalised (measured, BENCHMARKS.md).
	MaxInFlightBytes int64
	// MaxBatchItems bounds the items of one array/NDJSON/batch request. Default 1000.
	MaxBatchItems int
	// Limits bound one canonical event. Default event.DefaultLimits.
	Limits event.Limits
	// DedupeWindow and DedupeEntries size the local idempotency-key cache.
	// Defaults 15 minutes and 200,000 keys (~40 MiB at most); a window <= 0
	// with DedupeEntries < 0 disables it.
	DedupeWindow  time.Duration
	DedupeEntries int
	// RetryAfter is the Retry-After sent with 503. Default 2s.
	RetryAfter time.Duration
	// Registerer receives the metrics. Default: a private registry served on /metrics.
	Registry *prometheus.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for received_at; default time.Now.
	Now func() time.Time
}

// Server is the ingest http.Handler.
type Server struct {
	o        Options
	inFlight *semaphore.Weighted // request body bytes admitted (MaxInFlightBytes)
	mux      *http.ServeMux
	dedupe   *dedupe
	prompts  map[string]bool
	m        *metrics
	// ipKeys caches each tenant's IP HMAC key (tenant → []byte, read-only): deriving
	// it was an HMAC per request. Tenants come from the tokens, so it stays small.
	ipKeys sync.Map
}

// New checks opts and builds a Server.
func New(opts Options) (*Server, error) {
	if opts.Tokens == nil || opts.Publisher == nil || opts.Redactor == nil {
		return nil, errors.New("ingest: Tokens, Publisher and Redactor are required")
	}
	if len(opts.IPKey) < 16 {
		return nil, errors.New("ingest: IPKey must be at least 16 bytes of secret (TRAILKEEP_INGEST_IP_KEY)")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 5 << 20
	}
	if opts.MaxBatchItems <= 0 {
		opts.MaxBatchItems = 1000
	}
	if opts.MaxInFlightBytes <= 0 {
		opts.MaxInFlightBytes = 6 << 20
	}
	if opts.MaxInFlightBytes < opts.MaxBodyBytes {
		return nil, fmt.Errorf("ingest: MaxInFlightBytes (%d) is below MaxBodyBytes (%d): the largest request could never be admitted", opts.MaxInFlightBytes, opts.MaxBodyBytes)
	}
	if opts.Limits == (event.Limits{}) {
		opts.Limits = event.DefaultLimits
	}
	if opts.DedupeWindow == 0 {
		opts.DedupeWindow = 15 * time.Minute
	}
	if opts.DedupeEntries == 0 {
		opts.DedupeEntries = 200_000
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 2 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{o: opts, inFlight: semaphore.NewWeighted(opts.MaxInFlightBytes), mux: http.NewServeMux(), dedupe: newDedupe(opts.DedupeWindow, opts.DedupeEntries), prompts: map[string]bool{}}
	for _, t := range opts.PromptTextTenants {
		s.prompts[t] = true
	}
	s.m = newMetrics(opts.Registry, opts.Publisher)
	s.mux.Handle("POST /v1/events", s.endpoint("events", ScopeEvents, s.parseEvents))
	s.mux.Handle("POST /v1/hooks/claude-code", s.endpoint("hooks", ScopeHooks, s.parseHook))
	s.mux.Handle("POST /v1/cloudevents", s.endpoint("cloudevents", ScopeCloudEvents, s.parseCloudEvents))
	s.mux.Handle("POST /v1/logs", s.endpoint("otlp", ScopeLogs, s.parseOTLP))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !opts.Publisher.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "kafka unreachable\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	return s, nil
}

// ServeHTTP implements http.Handler. Panics in a handler become a 500 with a JSON
// body, and are logged: they are bugs, never the client's fault.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.o.Logger.Error("ingest: handler panic", "path", r.URL.Path, "panic", v)
			writeError(w, http.StatusInternalServerError, "internal", "internal error; the request was not accepted", nil)
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// request is what a parser sees.
type request struct {
	r         *http.Request
	body      []byte
	principal *Principal
	clientIP  string
	now       time.Time
}

// parsed is one item of a request after source mapping: a canonical document to
// stamp, or the reason it was rejected.
type parsed struct {
	doc map[string]any
	err error
	// mapped: doc was built by a source mapper, not written by the sender (see
	// event.Stamp.Mapped).
	mapped bool
	// field maps a pointer into doc back to the payload field it came from, for
	// error messages; nil when they are the same.
	field func(string) string
}

// parser turns a request into items. A non-nil error rejects the whole request
// (it is an *httpError or an *event.ValidationError).
type parser func(req *request) (items []parsed, single bool, err error)

type httpError struct {
	status int
	code   string
	msg    string
	errs   []event.FieldError
}

func (e *httpError) Error() string { return e.msg }

// endpoint wraps a parser with authentication, limits, stamping, publishing and the
// response.
func (s *Server) endpoint(name, scope string, parse parser) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := s.serve(w, r, name, scope, parse)
		s.m.duration.WithLabelValues(name, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, name, scope string, parse parser) int {
	p, err := s.o.Tokens.authenticate(r)
	if err != nil {
		s.m.rejected.WithLabelValues(name, "unauthorized").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="trailkeep"`)
		return writeError(w, http.StatusUnauthorized, "unauthorized", err.Error(), nil)
	}
	if !p.has(scope) {
		s.m.rejected.WithLabelValues(name, "forbidden").Inc()
		return writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("token %q lacks scope %s", p.Token.Name, scope), nil)
	}
	if !s.o.Publisher.Ready() {
		s.m.rejected.WithLabelValues(name, "broker_unreachable").Inc()
		return s.unavailable(w, "broker_unreachable", "no Kafka broker has answered the last probe; nothing was accepted, retry later")
	}
	if r.ContentLength > s.o.MaxBodyBytes {
		s.m.rejected.WithLabelValues(name, event.RuleMaxBytes).Inc()
		return tooLarge(w, s.o.MaxBodyBytes)
	}
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = s.o.MaxBodyBytes // undeclared length: the most it may read
	}
	if !s.inFlight.TryAcquire(reserve) {
		s.m.rejected.WithLabelValues(name, "at_capacity").Inc()
		return s.unavailable(w, "at_capacity", fmt.Sprintf("ingest is at capacity: requests in flight hold its %d-byte budget; nothing was accepted, retry later", s.o.MaxInFlightBytes))
	}
	defer s.inFlight.Release(reserve)
	if err := checkCharset(r); err != nil {
		s.m.rejected.WithLabelValues(name, "charset").Inc()
		return writeError(w, err.status, err.code, err.msg, err.errs)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.m.rejected.WithLabelValues(name, event.RuleMaxBytes).Inc()
			return tooLarge(w, s.o.MaxBodyBytes)
		}
		return writeError(w, http.StatusBadRequest, "read_error", "could not read the request body: "+err.Error(), nil)
	}
	s.m.bytes.WithLabelValues(name).Add(float64(len(body)))
	req := &request{r: r, body: body, principal: p, clientIP: s.clientIP(r), now: s.o.Now().UTC()}
	items, single, err := parse(req)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			s.m.rejected.WithLabelValues(name, he.code).Inc()
			return writeError(w, he.status, he.code, he.msg, he.errs)
		}
		var ve *event.ValidationError
		if errors.As(err, &ve) {
			s.m.rejected.WithLabelValues(name, ruleOf(ve)).Inc()
			return writeError(w, statusFor(ve), "invalid_request", ve.Error(), ve.Errors)
		}
		s.o.Logger.Error("ingest: parse", "endpoint", name, "err", err)
		return writeError(w, http.StatusInternalServerError, "internal", "internal error; the request was not accepted", nil)
	}
	return s.accept(w, r.Context(), name, req, items, single)
}

// Per-item outcome in batch responses.
const (
	statusAccepted    = "accepted"
	statusDuplicate   = "duplicate"
	statusRejected    = "rejected"
	statusUnavailable = "unavailable"
)

type itemResult struct {
	Index  int    `json:"index"`
	Status string `json:"status"`
	ID     string `json:"id,omitempty"`
	// Conflict is the id of the earlier event this one shares an idempotency key
	// with, although its content differs; the event was stored all the same.
	Conflict string             `json:"idempotency_conflict,omitempty"`
	Errors   []event.FieldError `json:"errors,omitempty"`
	Error    string             `json:"error,omitempty"`
}

type batchResponse struct {
	Accepted    int          `json:"accepted"`
	Duplicates  int          `json:"duplicates"`
	Rejected    int          `json:"rejected"`
	Unavailable int          `json:"unavailable"`
	Results     []itemResult `json:"results"`
}

func (s *Server) accept(w http.ResponseWriter, ctx context.Context, name string, req *request, items []parsed, single bool) int {
	results := s.process(ctx, name, req, items)
	if name == "otlp" {
		return s.respondOTLP(w, req, results)
	}
	return s.respond(w, name, single, results)
}

// process takes a request's items through deduplication, redaction, validation and
// Kafka, and returns each item's outcome: the one path of every endpoint.
func (s *Server) process(ctx context.Context, name string, req *request, items []parsed) []itemResult {
	tok := req.principal.Token
	stamp := event.Stamp{Tenant: tok.Tenant, Tool: tok.Source, ReceivedAt: req.now, IPKey: s.tenantIPKey(tok.Tenant)}
	results := make([]itemResult, len(items))
	prep := prepareAll(items, stamp, name)
	dupOf := s.resolveDuplicates(name, req.now, prep, results)
	s.redactAll(prep)
	canonicalizeAll(prep, s.o.Limits)
	var msgs []kafka.Message
	var msgIdx []int
	for i, p := range prep {
		results[i].Index = i
		if p.skip {
			continue
		}
		if p.err != nil {
			var ve *event.ValidationError
			if !errors.As(p.err, &ve) {
				s.o.Logger.Error("ingest: canonicalize", "endpoint", name, "err", p.err)
				ve = &event.ValidationError{Errors: []event.FieldError{{Rule: "internal", Message: "internal error while processing this item"}}}
			}
			results[i].Status, results[i].Errors = statusRejected, senderFields(ve.Errors, items[i].field)
			s.m.rejected.WithLabelValues(name, ruleOf(ve)).Inc()
			continue
		}
		results[i].ID = p.id
		msgs = append(msgs, kafka.Message{Key: []byte(tok.Tenant), Value: p.canon})
		msgIdx = append(msgIdx, i)
	}
	if len(msgs) > 0 {
		s.publish(ctx, name, tok.Tenant, req.now, msgs, msgIdx, prep, results)
	}
	// A duplicate of an item in this request shares the fate of the original.
	for i := range results {
		if results[i].Status == statusDuplicate {
			if j, ok := dupOf[i]; ok && results[j].Status != statusAccepted {
				results[i].Status, results[i].Error = results[j].Status, results[j].Error
			}
		}
	}
	return results
}

// resolveDuplicates decides, before anything is redacted or written, which items
// repeat an event already accepted (same idempotency identity, same content): those
// are answered "duplicate" with the first id and skipped. An item that reuses an
// identity with different content is a conflict: it is kept, marked with the first
// event's id in idempotency_conflict, and counted. It returns, for duplicates of an
// earlier item of this request, the index of that item.
func (s *Server) resolveDuplicates(name string, now time.Time, prep []prepared, results []itemResult) map[int]int {
	dupOf := map[int]int{}
	inRequest := map[string]int{}
	for i := range prep {
		p := &prep[i]
		if p.err != nil || p.identity == "" {
			continue
		}
		first, firstContent, found := "", [32]byte{}, false
		if e, ok := s.dedupe.lookup(p.identity, now); ok {
			first, firstContent, found = e.id, e.content, true
		} else if j, ok := inRequest[p.identity]; ok {
			first, firstContent, found = prep[j].doc["id"].(string), prep[j].content, true
			if firstContent == p.content {
				dupOf[i] = j
			}
		} else {
			inRequest[p.identity] = i
		}
		switch {
		case !found:
		case firstContent == p.content:
			p.skip = true
			results[i].Status, results[i].ID = statusDuplicate, first
		default:
			p.doc["idempotency_conflict"] = first
			results[i].Conflict = first
			s.m.conflicts.WithLabelValues(name).Inc()
		}
	}
	return dupOf
}

// publish hands the canonical events to Kafka and records each item's outcome.
func (s *Server) publish(ctx context.Context, name, tenant string, now time.Time, msgs []kafka.Message, msgIdx []int, prep []prepared, results []itemResult) {
	t0 := time.Now()
	errs := s.o.Publisher.Publish(ctx, msgs)
	s.m.ack.Observe(time.Since(t0).Seconds())
	if n, first := countErrs(errs); n > 0 {
		s.o.Logger.Warn("ingest: events not acknowledged; answered 503", "endpoint", name, "tenant", tenant, "failed", n, "of", len(errs), "err", first)
	}
	for k, err := range errs {
		i := msgIdx[k]
		if err != nil {
			results[i].Status, results[i].Error = statusUnavailable, publishError(err)
			reason := "unavailable"
			if errors.Is(err, context.Canceled) {
				reason = "client_cancelled" // the sender hung up before the ack
			}
			s.m.rejected.WithLabelValues(name, reason).Inc()
			continue
		}
		results[i].Status = statusAccepted
		s.m.accepted.WithLabelValues(name).Inc()
		if prep[i].identity != "" {
			s.dedupe.add(prep[i].identity, results[i].ID, prep[i].content, now)
		}
	}
}

// respond writes the answer for the whole request.
func (s *Server) respond(w http.ResponseWriter, name string, single bool, results []itemResult) int {
	resp := batchResponse{Results: results}
	for _, r := range results {
		switch r.Status {
		case statusAccepted:
			resp.Accepted++
		case statusDuplicate:
			resp.Duplicates++
		case statusRejected:
			resp.Rejected++
		case statusUnavailable:
			resp.Unavailable++
		}
	}
	s.m.duplicates.WithLabelValues(name).Add(float64(resp.Duplicates))
	switch {
	case resp.Unavailable > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int(s.o.RetryAfter.Round(time.Second)/time.Second)))
		return writeJSON(w, http.StatusServiceUnavailable, resp)
	case single && resp.Rejected == 1:
		return writeError(w, http.StatusBadRequest, "invalid_event", "the event was rejected", results[0].Errors)
	case name == "hooks":
		// Claude Code parses a 2xx JSON body as a hook decision; an audit endpoint must
		// never influence the agent, so success is an empty body.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	case len(results) > 0 && resp.Rejected == len(results):
		return writeJSON(w, http.StatusBadRequest, resp)
	case resp.Rejected > 0:
		return writeJSON(w, http.StatusMultiStatus, resp)
	default:
		return writeJSON(w, http.StatusOK, resp)
	}
}

// prepared is one item on its way to Kafka.
type prepared struct {
	doc map[string]any
	// identity is what deduplication compares: the SHA-256 of the endpoint, tenant,
	// source tool and the idempotency key as derived from the sender's identifiers
	// (before redaction, which could make two keys equal). "" when there is no key.
	identity string
	// content is the digest of what the sender said (see contentDigest); zero when
	// there is no identity to compare it under.
	content [32]byte
	skip    bool   // answered as a duplicate; not written
	id      string // the event's id, once canonical
	canon   []byte
	err     error
}

// prepareAll checks and stamps items (server-owned fields, tenant, id, times, client
// IP) and takes each one's idempotency identity and content digest, spreading a large
// batch over the cores.
func prepareAll(items []parsed, stamp event.Stamp, endpoint string) []prepared {
	out := make([]prepared, len(items))
	parallel.For(len(items), minItemsPerWorker, func(i int) {
		it, p := items[i], &out[i]
		p.doc, p.err = it.doc, it.err
		if p.err != nil {
			return
		}
		if event.HasIdempotencyKey(it.doc) { // only such items are compared
			p.content = contentDigest(it.doc)
		}
		st := stamp
		st.Mapped = it.mapped
		if p.err = st.Apply(it.doc); p.err != nil {
			return
		}
		if key, _ := it.doc["idempotency_key"].(string); key != "" {
			p.identity = event.IdempotencyKey("ingest/v1", endpoint, stamp.Tenant, stamp.Tool, key)
		}
	})
	return out
}

// contentDigest is the SHA-256 of the canonical form of what a sender said about an
// event: the document as parsed or mapped, before the server stamps it, without the
// client address (a retry may come from another address). Two deliveries of one
// event have equal digests; two events that share a key and differ anywhere else do
// not.
func contentDigest(doc map[string]any) [32]byte {
	d := doc
	if actor, ok := doc["actor"].(map[string]any); ok {
		if _, hasIP := actor["ip"]; hasIP {
			d = make(map[string]any, len(doc))
			for k, v := range doc {
				d[k] = v
			}
			a := make(map[string]any, len(actor))
			for k, v := range actor {
				if k != "ip" {
					a[k] = v
				}
			}
			d["actor"] = a
		}
	}
	canon, err := event.AppendCanonical(nil, d)
	if err != nil {
		// Unencodable documents are rejected by Canonicalize; hash the error so they
		// never compare equal to anything by accident.
		canon = []byte("unencodable: " + err.Error())
	}
	return sha256.Sum256(canon)
}

// redactAll masks secrets in every document that will be written, after
// deduplication has compared the unredacted content and keys.
func (s *Server) redactAll(prep []prepared) {
	docs := make([]map[string]any, 0, len(prep))
	for _, p := range prep {
		if p.err == nil && !p.skip {
			docs = append(docs, p.doc)
		}
	}
	s.o.Redactor.Documents(docs)
}

// canonicalizeAll validates and canonicalises the documents to write, spreading a
// large batch over the available cores: a 500-event batch is ~35 ms of CPU on one
// core, which would otherwise be the whole of its acknowledgement latency.
func canonicalizeAll(prep []prepared, lim event.Limits) {
	parallel.For(len(prep), minItemsPerWorker, func(i int) {
		p := &prep[i]
		if p.err != nil || p.skip {
			return
		}
		if p.canon, p.err = event.CanonicalBytes(p.doc, lim); p.err == nil {
			p.id, _ = p.doc["id"].(string) // stamped; the schema requires a string
		}
	})
}

// senderFields renames error pointers to the fields as the sender wrote them.
func senderFields(errs []event.FieldError, field func(string) string) []event.FieldError {
	if field == nil {
		return errs
	}
	out := make([]event.FieldError, len(errs))
	for i, e := range errs {
		e.Field = field(e.Field)
		out[i] = e
	}
	return out
}

// minItemsPerWorker keeps small requests on their own goroutine, where spreading
// costs more than it saves.
const minItemsPerWorker = 32

func countErrs(errs []error) (int, error) {
	n, first := 0, error(nil)
	for _, e := range errs {
		if e != nil {
			if first == nil {
				first = e
			}
			n++
		}
	}
	return n, first
}

// publishError says, per item, why Kafka did not take it: the cause first
// (buffer_full, ack_timeout, cancelled, kafka_error), then what happened.
func publishError(err error) string {
	switch {
	case errors.Is(err, kafka.ErrBufferFull):
		return "buffer_full: the producer already holds its maximum of unacknowledged bytes; retry later"
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, context.DeadlineExceeded):
		return "ack_timeout: Kafka did not acknowledge within the delivery timeout; retry later"
	case errors.Is(err, context.Canceled):
		return "cancelled: the request was cancelled before Kafka acknowledged"
	default:
		return "kafka_error: Kafka did not acknowledge the event: " + err.Error()
	}
}

// unavailable answers 503 with Retry-After. cause names why, in the body's error
// field: broker_unreachable (the readiness probe failed), at_capacity (the in-flight
// byte budget is taken), so a sender and an operator see the real reason.
func (s *Server) unavailable(w http.ResponseWriter, cause, msg string) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(s.o.RetryAfter.Round(time.Second)/time.Second)))
	return writeError(w, http.StatusServiceUnavailable, cause, msg, nil)
}

func tooLarge(w http.ResponseWriter, limit int64) int {
	return writeError(w, http.StatusRequestEntityTooLarge, "body_too_large",
		fmt.Sprintf("request body exceeds %d bytes", limit),
		[]event.FieldError{{Field: "", Rule: event.RuleMaxBytes, Limit: strconv.FormatInt(limit, 10), Message: "request body too large; split the batch"}})
}

// checkCharset refuses a declared charset other than UTF-8: JSON text is UTF-8
// (RFC 8259), and reading ISO-8859-1 bytes as UTF-8 would store other text than was
// sent.
func checkCharset(r *http.Request) *httpError {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil // the parser's media type check reports it
	}
	cs, ok := params["charset"]
	if !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8") {
		return nil
	}
	return &httpError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		msg:  fmt.Sprintf("charset %q is not accepted; send UTF-8 (charset=utf-8 or none)", cs),
		errs: []event.FieldError{{Field: "", Rule: "charset", Limit: "utf-8", Message: "unsupported charset " + cs}}}
}

// tenantIPKey derives the tenant's IP HMAC key from the master key.
func (s *Server) tenantIPKey(tenant string) []byte {
	if k, ok := s.ipKeys.Load(tenant); ok {
		return k.([]byte)
	}
	m := hmac.New(sha256.New, s.o.IPKey)
	m.Write([]byte("trailkeep/ip/v1/" + tenant))
	k := m.Sum(nil)
	s.ipKeys.Store(tenant, k)
	return k
}

// clientIP is the TCP peer, or the right-most untrusted X-Forwarded-For hop when the
// peer is a trusted proxy.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	addr = addr.Unmap()
	if !s.trusted(addr) {
		return addr.String()
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
	}
	return addr.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.o.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// --- parsers ---

func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

func unsupported(got string, want ...string) error {
	if got == "" {
		got = "none"
	}
	return &httpError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		msg:  fmt.Sprintf("Content-Type %s is not accepted here; use %s", got, strings.Join(want, " or ")),
		errs: []event.FieldError{{Field: "", Rule: "content_type", Limit: strings.Join(want, ", "), Message: "unsupported Content-Type " + got}}}
}

// parseEvents accepts canonical events as a JSON object, a JSON array or NDJSON.
func (s *Server) parseEvents(req *request) ([]parsed, bool, error) {
	var raws [][]byte
	single := false
	switch mt := mediaType(req.r); mt {
	case "application/json":
		trimmed := bytes.TrimLeft(req.body, " \t\r\n")
		if len(trimmed) > 0 && trimmed[0] == '[' {
			var err error
			if raws, err = event.SplitArray(req.body, s.o.MaxBatchItems); err != nil {
				return nil, false, err
			}
		} else {
			raws, single = [][]byte{req.body}, true
		}
	case "application/x-ndjson", "application/jsonl", "application/json-seq":
		for _, line := range bytes.Split(req.body, []byte{'\n'}) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if len(raws) == s.o.MaxBatchItems {
				return nil, false, &event.ValidationError{Errors: []event.FieldError{{Rule: "maxItems", Limit: strconv.Itoa(s.o.MaxBatchItems), Message: fmt.Sprintf("a batch holds at most %d items", s.o.MaxBatchItems)}}}
			}
			raws = append(raws, line)
		}
	default:
		return nil, false, unsupported(mt, "application/json", "application/x-ndjson")
	}
	if len(raws) == 0 {
		return nil, false, &event.ValidationError{Errors: []event.FieldError{{Rule: "minItems", Limit: "1", Message: "the request holds no events"}}}
	}
	items := make([]parsed, len(raws))
	for i, raw := range raws {
		doc, err := event.Decode(raw, s.o.Limits)
		items[i] = parsed{doc: doc, err: err}
	}
	return items, single, nil
}

// parseHook maps one Claude Code hook payload.
func (s *Server) parseHook(req *request) ([]parsed, bool, error) {
	if mt := mediaType(req.r); mt != "application/json" {
		return nil, false, unsupported(mt, "application/json")
	}
	p, err := event.Decode(req.body, claudecode.Limits)
	if err != nil {
		return nil, true, err
	}
	doc, err := claudecode.Map(p, claudecode.Options{
		Actor:      req.principal.Token.Actor,
		ClientIP:   req.clientIP,
		PromptText: s.prompts[req.principal.Token.Tenant],
		Redactor:   s.o.Redactor,
	})
	if err != nil {
		return nil, true, err
	}
	return []parsed{{doc: doc, mapped: true, field: claudecode.PayloadPointer}}, true, nil
}

// parseCloudEvents accepts structured mode (one event) and batch mode.
func (s *Server) parseCloudEvents(req *request) ([]parsed, bool, error) {
	var raws [][]byte
	single := false
	switch mt := mediaType(req.r); mt {
	case cloudevents.MediaType, "application/json":
		raws, single = [][]byte{req.body}, true
	case cloudevents.BatchMediaType:
		var err error
		if raws, err = event.SplitArray(req.body, s.o.MaxBatchItems); err != nil {
			return nil, false, err
		}
	default:
		if req.r.Header.Get("Ce-Specversion") != "" {
			return nil, false, &httpError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
				msg:  "CloudEvents binary mode is not accepted; send structured mode (application/cloudevents+json)",
				errs: []event.FieldError{{Rule: "content_type", Limit: cloudevents.MediaType, Message: "binary mode not supported"}}}
		}
		return nil, false, unsupported(mt, cloudevents.MediaType, cloudevents.BatchMediaType)
	}
	items := make([]parsed, len(raws))
	for i, raw := range raws {
		ce, err := event.Decode(raw, s.o.Limits)
		var doc map[string]any
		if err == nil {
			doc, err = cloudevents.Map(ce)
		}
		items[i] = parsed{doc: doc, err: err, field: cloudevents.PayloadPointer}
	}
	if single && items[0].err != nil {
		return nil, true, items[0].err
	}
	return items, single, nil
}

// --- responses ---

type errorBody struct {
	Error   string             `json:"error"`
	Message string             `json:"message"`
	Errors  []event.FieldError `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string, errs []event.FieldError) int {
	return writeJSON(w, status, errorBody{Error: code, Message: msg, Errors: errs})
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"could not encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return status
}

// statusFor maps a request-level validation error: size limits are 413, the rest 400.
func statusFor(ve *event.ValidationError) int {
	for _, e := range ve.Errors {
		if e.Field == "" && e.Rule == event.RuleMaxBytes {
			return http.StatusRequestEntityTooLarge
		}
	}
	return http.StatusBadRequest
}

func ruleOf(ve *event.ValidationError) string {
	if len(ve.Errors) == 0 {
		return "invalid"
	}
	return ve.Errors[0].Rule
}
