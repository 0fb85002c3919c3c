package ingest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/source/otlp"
)

// OTLP/HTTP media types (https://opentelemetry.io/docs/specs/otlp/#otlphttp).
const (
	otlpProto = "application/x-protobuf"
	otlpJSON  = "application/json"
)

// parseOTLP decodes an OTLP/HTTP logs export (protobuf or JSON, optionally gzip) and
// maps its records.
func (s *Server) parseOTLP(req *request) ([]parsed, bool, error) {
	mt := mediaType(req.r)
	if mt != otlpProto && mt != otlpJSON {
		return nil, false, unsupported(mt, otlpProto, otlpJSON)
	}
	body, err := s.otlpBody(req)
	if err != nil {
		return nil, false, err
	}
	logs, err := decodeOTLP(mt, body)
	if err != nil {
		return nil, false, err
	}
	return s.mapOTLP(logs, req.principal, req.now), false, nil
}

// otlpBody is the request body, gunzipped when Content-Encoding says so. The
// decompressed size is bounded by MaxBodyBytes too: a small gzip bomb is refused
// with 413, never inflated into memory.
func (s *Server) otlpBody(req *request) ([]byte, error) {
	switch enc := strings.ToLower(strings.TrimSpace(req.r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return req.body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(req.body))
		if err != nil {
			return nil, &httpError{status: http.StatusBadRequest, code: "invalid_request", msg: "the body is not gzip: " + err.Error(),
				errs: []event.FieldError{{Rule: "content_encoding", Limit: "gzip", Message: "undecodable gzip body"}}}
		}
		out, err := io.ReadAll(io.LimitReader(zr, s.o.MaxBodyBytes+1))
		if err != nil {
			return nil, &httpError{status: http.StatusBadRequest, code: "invalid_request", msg: "the gzip body is corrupt: " + err.Error(),
				errs: []event.FieldError{{Rule: "content_encoding", Limit: "gzip", Message: "corrupt gzip body"}}}
		}
		if int64(len(out)) > s.o.MaxBodyBytes {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
				msg:  fmt.Sprintf("the decompressed body exceeds %d bytes", s.o.MaxBodyBytes),
				errs: []event.FieldError{{Rule: event.RuleMaxBytes, Limit: strconv.FormatInt(s.o.MaxBodyBytes, 10), Message: "decompressed body too large; export smaller batches"}}}
		}
		return out, nil
	default:
		return nil, &httpError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
			msg:  fmt.Sprintf("Content-Encoding %q is not accepted; use gzip or none", enc),
			errs: []event.FieldError{{Rule: "content_encoding", Limit: "gzip", Message: "unsupported Content-Encoding " + enc}}}
	}
}

func decodeOTLP(mt string, body []byte) (plog.Logs, error) {
	er := plogotlp.NewExportRequest()
	var err error
	if mt == otlpProto {
		err = er.UnmarshalProto(body)
	} else {
		err = er.UnmarshalJSON(body)
	}
	if err != nil {
		return plog.Logs{}, &httpError{status: http.StatusBadRequest, code: "invalid_request",
			msg:  "the body is not an OTLP ExportLogsServiceRequest: " + err.Error(),
			errs: []event.FieldError{{Rule: "syntax", Limit: mt, Message: "undecodable OTLP logs request"}}}
	}
	return er.Logs(), nil
}

// mapOTLP maps the records for principal p; records sampled out are not items.
func (s *Server) mapOTLP(logs plog.Logs, p *Principal, now time.Time) []parsed {
	tenant := p.Token.Tenant
	items := otlp.Map(logs, otlp.Options{Actor: p.Token.Actor, PromptText: s.prompts[tenant], Redactor: s.o.Redactor, Keep: s.sampler(tenant)})
	out := make([]parsed, 0, len(items))
	for _, it := range items {
		if it.Skipped {
			s.m.sampled.WithLabelValues("otlp").Inc()
			continue
		}
		if it.Doc != nil {
			otlpKey(it.Doc)
		}
		out = append(out, parsed{doc: it.Doc, err: it.Err, mapped: true})
	}
	return out
}

// otlpKey gives a record with a session and a sequence number (Claude Code numbers
// its events per session) an idempotency key, so an exporter's retry of a batch is
// answered as duplicates instead of being stored twice.
func otlpKey(doc map[string]any) {
	sess, _ := doc["session"].(map[string]any)
	meta, _ := doc["metadata"].(map[string]any)
	id, _ := sess["id"].(string)
	seq, ok := meta["event_sequence"].(float64)
	if id == "" || !ok {
		return
	}
	raw, _ := doc["source"].(map[string]any)["raw_event"].(string)
	doc["idempotency_key"] = event.IdempotencyKey("otlp", id, raw, strconv.FormatFloat(seq, 'f', -1, 64))
}

// sampler is the tenant's Keep function, nil when nothing is sampled.
func (s *Server) sampler(tenant string) func(string, plog.LogRecord) bool {
	rates := map[string]float64{}
	for _, t := range []string{"*", tenant} {
		for name, r := range s.o.OTLPSample[t] {
			rates[name] = r
		}
	}
	if len(rates) == 0 {
		return nil
	}
	return func(name string, lr plog.LogRecord) bool {
		rate, ok := rates[name]
		if !ok || rate >= 1 {
			return true
		}
		h := sha256.New()
		for _, k := range []string{"session.id", "event.sequence", "prompt.id"} {
			if v, ok := lr.Attributes().Get(k); ok {
				h.Write([]byte(v.AsString()))
			}
			h.Write([]byte{0})
		}
		binary.Write(h, binary.BigEndian, uint64(lr.Timestamp()))
		u := binary.BigEndian.Uint64(h.Sum(nil)[:8])
		return float64(u>>11)/float64(1<<53) < rate
	}
}

// respondOTLP answers as OTLP/HTTP specifies: 200 with an ExportLogsServiceResponse,
// whose partial_success counts the rejected records and says why; 503 with
// Retry-After and a google.rpc.Status when any record was not acknowledged (the
// exporter retries the whole batch; the records already stored are answered as
// duplicates); the body in the request's encoding.
func (s *Server) respondOTLP(w http.ResponseWriter, req *request, results []itemResult) int {
	mt := mediaType(req.r)
	rejected, unavailable := 0, 0
	var why []string
	for _, r := range results {
		switch r.Status {
		case statusRejected:
			rejected++
			if len(why) < 5 {
				for _, e := range r.Errors {
					why = append(why, fmt.Sprintf("record %d: %s", r.Index, e.Error()))
				}
			}
		case statusUnavailable:
			unavailable++
		}
	}
	if unavailable > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.o.RetryAfter.Round(time.Second)/time.Second)))
		msg := fmt.Sprintf("%d of %d log records were not acknowledged by Kafka; retry the export", unavailable, len(results))
		return writeStatus(w, mt, http.StatusServiceUnavailable, status.New(codes.Unavailable, msg))
	}
	resp := plogotlp.NewExportResponse()
	if rejected > 0 {
		ps := resp.PartialSuccess()
		ps.SetRejectedLogRecords(int64(rejected))
		ps.SetErrorMessage(strings.Join(why, "; "))
	}
	var b []byte
	var err error
	if mt == otlpProto {
		b, err = resp.MarshalProto()
	} else {
		b, err = resp.MarshalJSON()
	}
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "internal", "could not encode the response", nil)
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return http.StatusOK
}

// writeStatus writes a google.rpc.Status, the body of OTLP/HTTP errors.
func writeStatus(w http.ResponseWriter, mt string, code int, st *status.Status) int {
	var b []byte
	var err error
	if mt == otlpProto {
		b, err = proto.Marshal(st.Proto())
	} else {
		mt = otlpJSON
		b, err = protojson.Marshal(st.Proto())
	}
	if err != nil {
		return writeError(w, code, "unavailable", st.Message(), nil)
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(code)
	w.Write(b)
	return code
}
