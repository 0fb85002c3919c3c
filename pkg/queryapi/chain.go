package queryapi

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// The stored chain, for `trailctl verify --store --api`: the verifier (pkg/verify)
// walks a partition through these calls as it walks ClickHouse. Walking a chain
// reads every record of the partition, whoever's tenant it is, so the calls that
// return records or a partition's checkpoints need an all-tenant admin token; the
// partition list is scoped like any read.

// GET /v1/partitions?tenant=
func (s *Server) partitions(w http.ResponseWriter, r *http.Request, c *call) {
	meta := map[string]any{}
	if !c.authorize(w, ActionVerified, RoleReader, meta) || !c.audit(ActionVerified, event.StatusSuccess, "", meta) {
		return
	}
	ps, err := s.o.Store.Partitions(r.Context(), c.tenants)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Partitions []int32 `json:"partitions"`
	}{append([]int32{}, ps...)})
}

// GET /v1/partitions/{p}/checkpoints
func (s *Server) partitionCheckpoints(w http.ResponseWriter, r *http.Request, c *call) {
	p, meta, ok := c.wholeChain(w, r)
	if !ok || !c.audit(ActionVerified, event.StatusSuccess, "", meta) {
		return
	}
	cps, err := s.o.Store.Checkpoints(r.Context(), p)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Checkpoints []chain.SignedCheckpoint `json:"checkpoints"`
	}{append([]chain.SignedCheckpoint{}, cps...)})
}

// GET /v1/partitions/{p}/seq-range?from_ns=&to_ns=: the first and last seq chained
// in [from_ns, to_ns) (Unix nanoseconds), ok false when none was.
func (s *Server) partitionSeqRange(w http.ResponseWriter, r *http.Request, c *call) {
	p, meta, ok := c.wholeChain(w, r)
	if !ok {
		return
	}
	from, to, ok := c.rangeParams(w, r, meta, "from_ns", "to_ns", math.MinInt64)
	if !ok {
		return
	}
	lo, hi, found, err := s.o.Store.SeqRange(r.Context(), p, time.Unix(0, from), time.Unix(0, to))
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, SeqRange{First: lo, Last: hi, OK: found})
}

// SeqRange is GET /v1/partitions/{p}/seq-range's answer.
type SeqRange struct {
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	OK    bool   `json:"ok"`
}

// GET /v1/partitions/{p}/records?from=&to=: the records with from <= seq < to, in
// seq order, as NDJSON (one chain record a line) with the row count in the
// X-Trailkeep-Rows trailer, so a cut stream is never taken for a short chain.
func (s *Server) partitionRecords(w http.ResponseWriter, r *http.Request, c *call) {
	p, meta, ok := c.wholeChain(w, r)
	if !ok {
		return
	}
	from, to, ok := c.rangeParams(w, r, meta, "from", "to", 0)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Trailer", "X-Trailkeep-Rows")
	bw := bufio.NewWriterSize(w, 64<<10)
	rows, started := 0, false
	err := s.o.Store.RecordsBetween(r.Context(), p, uint64(from), uint64(to), func(rec chain.Record) error {
		b, err := rec.MarshalJSON()
		if err != nil {
			return err
		}
		started = true
		rows++
		bw.Write(b)
		return bw.WriteByte('\n')
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if !started {
			c.fail(w, err)
			return
		}
		s.o.Logger.Error("partition records aborted", "token", c.tok.Name, "partition", p, "rows", rows, "err", err)
		panic(http.ErrAbortHandler) // no trailer: the client sees a cut stream
	}
	w.Header().Set("X-Trailkeep-Rows", strconv.Itoa(rows))
}

// wholeChain authorizes a call that reads a whole partition ({p}): an all-tenant
// admin's only. On false it has answered and audited.
func (c *call) wholeChain(w http.ResponseWriter, r *http.Request) (int32, map[string]any, bool) {
	meta := map[string]any{"partition": r.PathValue("p")}
	if !c.authorize(w, ActionVerified, RoleReader, meta) {
		return 0, meta, false
	}
	if c.tok.Role.rank() < RoleAdmin.rank() || !c.tok.All() || len(r.URL.Query()["tenant"]) > 0 {
		reason := fmt.Sprintf("walking a stored chain reads every tenant's records in the partition: it needs an admin token for all tenants (token %q: %s of %v)", c.tok.Name, c.tok.Role, c.tok.Tenants)
		if c.tok.All() {
			reason = "a stored chain holds every tenant's records: tenant= cannot narrow it"
		}
		c.audit(ActionVerified, event.StatusDenied, reason, meta)
		writeError(w, http.StatusForbidden, "forbidden", reason, nil)
		return 0, meta, false
	}
	p, err := strconv.ParseInt(r.PathValue("p"), 10, 32)
	if err != nil || p < 0 {
		c.invalid(w, ActionVerified, meta, event.FieldError{Field: "partition", Rule: "range", Limit: "0.." + strconv.Itoa(math.MaxInt32), Message: fmt.Sprintf("partition %q is not a partition number", r.PathValue("p"))})
		return 0, meta, false
	}
	return int32(p), meta, true
}

// rangeParams reads a [from, to) pair of integer parameters, each from lo (from's
// default) to MaxInt64 (to's default), into meta, and audits the call; on false it
// has answered and audited.
func (c *call) rangeParams(w http.ResponseWriter, r *http.Request, meta map[string]any, fromName, toName string, lo int64) (from, to int64, ok bool) {
	from, fe := intParam(r, fromName, lo, lo, math.MaxInt64)
	if fe == nil {
		to, fe = intParam(r, toName, math.MaxInt64, lo, math.MaxInt64)
	}
	if fe != nil {
		c.invalid(w, ActionVerified, meta, *fe)
		return 0, 0, false
	}
	meta[fromName], meta[toName] = strconv.FormatInt(from, 10), strconv.FormatInt(to, 10)
	return from, to, c.audit(ActionVerified, event.StatusSuccess, "", meta)
}

// intParam reads an integer query parameter within [lo, hi], def when absent.
func intParam(r *http.Request, name string, def, lo, hi int64) (int64, *event.FieldError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, &event.FieldError{Field: name, Rule: "range", Limit: fmt.Sprintf("%d..%d", lo, hi), Message: fmt.Sprintf("%s must be a whole number from %d to %d", name, lo, hi)}
	}
	return n, nil
}
