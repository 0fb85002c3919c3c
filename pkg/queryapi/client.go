package queryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/proof"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Client calls the query API with a bearer token: what trailctl uses with --api, so
// a reader without ClickHouse credentials gets the same answers as an operator, scoped
// to its token and audited like any other call.
type Client struct {
	// BaseURL is the API's address, e.g. https://audit.example.com.
	BaseURL string
	// Token is the bearer token (from trailctl tokens query).
	Token string
	// HTTP defaults to a client with a 2-minute timeout.
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

func (c *Client) get(ctx context.Context, path string, into any) error {
	return c.do(ctx, http.MethodGet, path, nil, func(b []byte) error { return json.Unmarshal(b, into) })
}

// do sends one request and hands a 2xx body to decode; any other answer is an
// *APIError with the API's code and field errors.
func (c *Client) do(ctx context.Context, method, path string, reqBody []byte, decode func([]byte) error) error {
	var rd io.Reader
	if reqBody != nil {
		rd = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("query API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("query API: reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
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
		return &APIError{Status: resp.StatusCode, Code: e.Error, Message: msg}
	}
	if err := decode(body); err != nil {
		return fmt.Errorf("query API: unexpected answer: %w", err)
	}
	return nil
}
