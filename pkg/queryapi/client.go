package queryapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/proof"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
	"github.com/trailkeep/trailkeep/pkg/verify"
)

// Client calls the query API with a bearer token: what trailctl uses with --api, so
// a reader without ClickHouse credentials gets the same answers as an operator, scoped
// to its token and audited like any other call.
type Client struct {
	// BaseURL is the API's address, e.g. https://audit.example.com.
	BaseURL string
	// Token is the bearer token (from trailctl tokens query).
	Token string
	// HTTP defaults to a client with a 2-minute timeout (none for Export, which
	// its context bounds).
	HTTP *http.Client
}

// APIError is an answer other than 2xx, with the API's error code and message.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("query API answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Search runs one page of GET /v1/events: the hits (canonical event bytes verbatim)
// and the next page's cursor ("" at the end).
func (c *Client) Search(ctx context.Context, q string, tenants []string, limit int, cursor string) ([]clickhouse.Hit, string, error) {
	v := url.Values{"q": {q}, "limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	for _, t := range tenants {
		v.Add("tenant", t)
	}
	var resp struct {
		Events     []eventJSON `json:"events"`
		NextCursor string      `json:"next_cursor"`
	}
	if err := c.get(ctx, "/v1/events?"+v.Encode(), &resp); err != nil {
		return nil, "", err
	}
	hits := make([]clickhouse.Hit, 0, len(resp.Events))
	for _, e := range resp.Events {
		at, err := time.Parse(time.RFC3339Nano, e.ChainedAt)
		if err != nil {
			return nil, "", fmt.Errorf("query API: event %d/%d: chained_at %q: %w", e.Partition, e.Seq, e.ChainedAt, err)
		}
		hits = append(hits, clickhouse.Hit{Partition: e.Partition, Seq: e.Seq, ChainedAt: at, LeafHash: e.LeafHash, Event: e.Event})
	}
	return hits, resp.NextCursor, nil
}

// Proof fetches GET /v1/events/{id}/proof: the bundle against the first checkpoint
// covering the event, or with latest against its partition's latest one. The bundle
// is parsed, not verified: verifying it with the caller's key is the caller's step.
func (c *Client) Proof(ctx context.Context, id string, latest bool) (proof.Bundle, error) {
	path := "/v1/events/" + url.PathEscape(id) + "/proof"
	if latest {
		path += "?checkpoint=latest"
	}
	var raw json.RawMessage
	if err := c.get(ctx, path, &raw); err != nil {
		return proof.Bundle{}, err
	}
	b, err := proof.Parse(raw)
	if err != nil {
		return proof.Bundle{}, fmt.Errorf("query API: proof of %s: %w", id, err)
	}
	return b, nil
}

// SQLResult is the answer of POST /v1/sql. Numbers are json.Number, so a UInt64
// arrives exactly.
type SQLResult struct {
	Columns   []clickhouse.Column `json:"columns"`
	Rows      [][]any             `json:"rows"`
	Truncated bool                `json:"truncated"`
}

// SQL runs one read-only statement through POST /v1/sql, scoped by the API to the
// token's tenants; maxRows 0 is the API's limit.
func (c *Client) SQL(ctx context.Context, stmt string, maxRows int) (SQLResult, error) {
	body, err := json.Marshal(struct {
		SQL     string `json:"sql"`
		MaxRows int    `json:"max_rows,omitempty"`
	}{stmt, maxRows})
	if err != nil {
		return SQLResult{}, err
	}
	var res SQLResult
	err = c.do(ctx, http.MethodPost, "/v1/sql", body, func(b []byte) error {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		return dec.Decode(&res)
	})
	return res, err
}

// Export streams GET /v1/export (format ndjson) and hands fn each chain record in
// the API's order. The body's SHA-256 and row count are checked against the API's
// trailers: an export cut or altered in transit is an error, never a short file.
func (c *Client) Export(ctx context.Context, q string, tenants []string, fn func(chain.Record) error) error {
	v := url.Values{"q": {q}, "format": {"ndjson"}}
	for _, t := range tenants {
		v.Add("tenant", t)
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/export?"+v.Encode(), nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	h := sha256.New()
	rows, err := scanRecords(io.TeeReader(resp.Body, h), "export", fn)
	if err != nil {
		return err
	}
	wantRows, wantSum := resp.Trailer.Get("X-Trailkeep-Rows"), resp.Trailer.Get("X-Trailkeep-Sha256")
	if wantRows == "" || wantSum == "" {
		return fmt.Errorf("query API: export ended after %d rows without its row count and SHA-256 trailers: incomplete", rows)
	}
	if got := strconv.FormatUint(rows, 10); got != wantRows {
		return fmt.Errorf("query API: export has %s rows, the API sent %s", got, wantRows)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSum {
		return fmt.Errorf("query API: export's SHA-256 is %s, the API sent %s", got, wantSum)
	}
	return nil
}

// Follow calls GET /v1/follow. With after nil it returns no records and the
// caller's head, the position a tail starts from; otherwise the records matching
// q stored after that position (at most limit, the server waiting up to wait for
// the first) and the position to pass next.
func (c *Client) Follow(ctx context.Context, q string, tenants []string, after clickhouse.Position, limit int, wait time.Duration) ([]chain.Record, clickhouse.Position, error) {
	v := url.Values{"q": {q}, "limit": {strconv.Itoa(limit)}, "wait": {wait.String()}}
	if after != nil {
		v.Set("after", after.String())
	}
	for _, t := range tenants {
		v.Add("tenant", t)
	}
	var resp struct {
		Records  []json.RawMessage `json:"records"`
		Position *string           `json:"position"`
	}
	if err := c.get(ctx, "/v1/follow?"+v.Encode(), &resp); err != nil {
		return nil, after, err
	}
	if resp.Position == nil {
		return nil, after, errors.New("query API: follow answer without a position")
	}
	next, err := clickhouse.ParsePosition(*resp.Position)
	if err != nil {
		return nil, after, fmt.Errorf("query API: follow answer: %w", err)
	}
	recs := make([]chain.Record, len(resp.Records))
	for i, raw := range resp.Records {
		if err := recs[i].UnmarshalJSON(raw); err != nil {
			return nil, after, fmt.Errorf("query API: follow record %d: %w", i+1, err)
		}
	}
	return recs, next, nil
}

// Partitions fetches GET /v1/partitions: the partitions holding the tenants'
// events (nil: the token's scope; for an all-tenant token, every checkpointed one).
func (c *Client) Partitions(ctx context.Context, tenants []string) ([]int32, error) {
	v := url.Values{}
	for _, t := range tenants {
		v.Add("tenant", t)
	}
	var out struct {
		Partitions []int32 `json:"partitions"`
	}
	err := c.get(ctx, "/v1/partitions?"+v.Encode(), &out)
	return out.Partitions, err
}

// Chain is the stored chain read through the API (an all-tenant admin token's
// calls), a verify.Source: `trailctl verify --store --api` walks it exactly as it
// walks ClickHouse, so what the API serves is checked, not trusted.
func (c *Client) Chain() *ChainSource { return &ChainSource{c: c} }

// ChainSource implements verify.Source over GET /v1/partitions/{p}/....
type ChainSource struct{ c *Client }

var _ verify.Source = (*ChainSource)(nil)

// Partitions is Client.Partitions, so a ChainSource lists what it can walk as a
// store does.
func (s *ChainSource) Partitions(ctx context.Context, tenants []string) ([]int32, error) {
	return s.c.Partitions(ctx, tenants)
}

// Checkpoints fetches partition p's signed checkpoints.
func (s *ChainSource) Checkpoints(ctx context.Context, p int32) ([]chain.SignedCheckpoint, error) {
	var out struct {
		Checkpoints []chain.SignedCheckpoint `json:"checkpoints"`
	}
	err := s.c.get(ctx, fmt.Sprintf("/v1/partitions/%d/checkpoints", p), &out)
	return out.Checkpoints, err
}

// SeqRange fetches the first and last seq of p chained in [from, to).
func (s *ChainSource) SeqRange(ctx context.Context, p int32, from, to time.Time) (uint64, uint64, bool, error) {
	var out SeqRange
	err := s.c.get(ctx, fmt.Sprintf("/v1/partitions/%d/seq-range?from_ns=%d&to_ns=%d", p, from.UnixNano(), to.UnixNano()), &out)
	return out.First, out.Last, out.OK, err
}

// RecordsBetween streams p's records with from <= seq < to. A stream that ends
// without the API's row count, or with another count, is an error.
func (s *ChainSource) RecordsBetween(ctx context.Context, p int32, from, to uint64, fn func(chain.Record) error) error {
	const maxSeq = 1<<63 - 1 // the API's bound: a seq past it cannot exist
	from, to = min(from, maxSeq), min(to, maxSeq)
	resp, err := s.c.send(ctx, http.MethodGet, fmt.Sprintf("/v1/partitions/%d/records?from=%d&to=%d", p, from, to), nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rows, err := scanRecords(resp.Body, fmt.Sprintf("partition %d records", p), fn)
	if err != nil {
		return err
	}
	if want := resp.Trailer.Get("X-Trailkeep-Rows"); want != strconv.FormatUint(rows, 10) {
		return fmt.Errorf("query API: partition %d: %d records received, the API's count is %q: incomplete", p, rows, want)
	}
	return nil
}

// scanRecords reads an NDJSON stream of chain records (the API's export and
// partition records) into fn and returns how many it read; what names the stream
// in errors. fn's own error is returned as it is.
func scanRecords(r io.Reader, what string, fn func(chain.Record) error) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var rows uint64
	for sc.Scan() {
		var rec chain.Record
		if err := rec.UnmarshalJSON(sc.Bytes()); err != nil {
			return rows, fmt.Errorf("query API: %s line %d: %w", what, rows+1, err)
		}
		rows++
		if err := fn(rec); err != nil {
			return rows, err
		}
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("query API: %s cut after %d rows: %w", what, rows, err)
	}
	return rows, nil
}

// Approvals fetches GET /v1/approvals: the approvals report over the token's
// tenants (narrowed to tenants, when given), for the calls q selects.
func (c *Client) Approvals(ctx context.Context, q string, tenants []string, limit int) ([]clickhouse.Approval, error) {
	v := url.Values{"q": {q}, "limit": {strconv.Itoa(limit)}, "format": {"json"}}
	for _, t := range tenants {
		v.Add("tenant", t)
	}
	var out struct {
		Approvals []clickhouse.Approval `json:"approvals"`
	}
	err := c.get(ctx, "/v1/approvals?"+v.Encode(), &out)
	return out.Approvals, err
}

// Drift fetches GET /v1/drift: the tool calls over the token's tenants (narrowed
// to tenants, when given) whose executed parameters were not approved.
func (c *Client) Drift(ctx context.Context, q string, tenants []string, unapproved bool, limit int) ([]clickhouse.Drift, error) {
	v := url.Values{"q": {q}, "limit": {strconv.Itoa(limit)}, "unapproved": {strconv.FormatBool(unapproved)}}
	for _, t := range tenants {
		v.Add("tenant", t)
	}
	var out struct {
		Drift []clickhouse.Drift `json:"drift"`
	}
	err := c.get(ctx, "/v1/drift?"+v.Encode(), &out)
	return out.Drift, err
}

// Checkpoint is one partition's latest signed checkpoint (GET /v1/checkpoints/latest).
type Checkpoint struct {
	Partition int32  `json:"partition"`
	Origin    string `json:"origin"`
	TreeSize  uint64 `json:"tree_size"`
	Note      string `json:"checkpoint"`
}

// LatestCheckpoints returns the latest checkpoint of each partition holding the
// token's tenants, unverified: checking them is the caller's step.
func (c *Client) LatestCheckpoints(ctx context.Context) ([]Checkpoint, error) {
	var out struct {
		Checkpoints []Checkpoint `json:"checkpoints"`
	}
	err := c.get(ctx, "/v1/checkpoints/latest", &out)
	return out.Checkpoints, err
}

// SavedQueries fetches GET /v1/queries?tenant=: the tenant's saved queries.
func (c *Client) SavedQueries(ctx context.Context, tenant string) ([]clickhouse.SavedQuery, error) {
	var out struct {
		Queries []clickhouse.SavedQuery `json:"queries"`
	}
	err := c.get(ctx, "/v1/queries?"+url.Values{"tenant": {tenant}}.Encode(), &out)
	return out.Queries, err
}

// SaveQuery sends PUT /v1/queries/{name}?tenant=; the API records the token's actor
// as saved_by and the time, so q.SavedBy and q.SavedAt are not sent.
func (c *Client) SaveQuery(ctx context.Context, q clickhouse.SavedQuery) error {
	body, err := json.Marshal(map[string]string{"query": q.Query, "description": q.Description})
	if err != nil {
		return err
	}
	path := "/v1/queries/" + url.PathEscape(q.Name) + "?" + url.Values{"tenant": {q.Tenant}}.Encode()
	return c.do(ctx, http.MethodPut, path, body, func([]byte) error { return nil })
}

// DeleteQuery sends DELETE /v1/queries/{name}?tenant=; an absent query is an
// *APIError with status 404.
func (c *Client) DeleteQuery(ctx context.Context, tenant, name string) error {
	path := "/v1/queries/" + url.PathEscape(name) + "?" + url.Values{"tenant": {tenant}}.Encode()
	return c.do(ctx, http.MethodDelete, path, nil, func([]byte) error { return nil })
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	return c.do(ctx, http.MethodGet, path, nil, func(b []byte) error { return json.Unmarshal(b, into) })
}

// send sends one request and returns a 2xx response with its body unread; any
// other answer is an *APIError with the API's code and field errors.
func (c *Client) send(ctx context.Context, method, path string, reqBody []byte, stream bool) (*http.Response, error) {
	var rd io.Reader
	if reqBody != nil {
		rd = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
		if stream { // an export runs as long as it runs; ctx bounds it
			hc = &http.Client{}
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query API: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error   string             `json:"error"`
		Message string             `json:"message"`
		Errors  []event.FieldError `json:"errors"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Message
	for _, fe := range e.Errors {
		msg += fmt.Sprintf(" [%s: %s]", fe.Field, fe.Message)
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	return nil, &APIError{Status: resp.StatusCode, Code: e.Error, Message: msg}
}

// do sends one request and hands a 2xx body to decode; any other answer is an
// *APIError with the API's code and field errors.
func (c *Client) do(ctx context.Context, method, path string, reqBody []byte, decode func([]byte) error) error {
	resp, err := c.send(ctx, method, path, reqBody, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("query API: reading the answer: %w", err)
	}
	if err := decode(body); err != nil {
		return fmt.Errorf("query API: unexpected answer: %w", err)
	}
	return nil
}
