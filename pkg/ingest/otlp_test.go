package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

func fixtureExport(t testing.TB) plogotlp.ExportRequest {
	t.Helper()
	er := plogotlp.NewExportRequest()
	if err := er.UnmarshalJSON(mustRead(t, "otlp/claude-code-logs.json")); err != nil {
		t.Fatal(err)
	}
	return er
}

func protoBody(t testing.TB, er plogotlp.ExportRequest) []byte {
	t.Helper()
	b, err := er.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func postOTLP(t testing.TB, s *Server, token, ctype, encoding string, body []byte) resp {
	t.Helper()
	r := httptest.NewRequest("POST", "/v1/logs", bytes.NewReader(body))
	r.RemoteAddr = "203.0.113.9:51000"
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", ctype)
	if encoding != "" {
		r.Header.Set("Content-Encoding", encoding)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return resp{w.Code, w.Header(), w.Body.Bytes()}
}

func exportResponse(t testing.TB, r resp) plogotlp.ExportResponse {
	t.Helper()
	er := plogotlp.NewExportResponse()
	var err error
	if strings.HasPrefix(r.header.Get("Content-Type"), otlpProto) {
		err = er.UnmarshalProto(r.body)
	} else {
		err = er.UnmarshalJSON(r.body)
	}
	if err != nil {
		t.Fatalf("%d: body is not an ExportLogsServiceResponse: %v (%q)", r.code, err, r.body)
	}
	return er
}

func TestOTLPHTTPEncodings(t *testing.T) {
	er := fixtureExport(t)
	pb := protoBody(t, er)
	js, _ := er.MarshalJSON()
	for _, tc := range []struct {
		name, ctype, enc string
		body             []byte
	}{
		{"protobuf", otlpProto, "", pb},
		{"json", otlpJSON, "", js},
		{"protobuf gzip", otlpProto, "gzip", gz(pb)},
		{"json gzip", otlpJSON, "gzip", gz(js)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{failAt: -1}
			s := newTestServer(t, pub)
			r := postOTLP(t, s, tokLogs, tc.ctype, tc.enc, tc.body)
			if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("%d %s %q", r.code, r.header.Get("Content-Type"), r.body)
			}
			if ps := exportResponse(t, r).PartialSuccess(); ps.RejectedLogRecords() != 0 {
				t.Errorf("rejected %d: %s", ps.RejectedLogRecords(), ps.ErrorMessage())
			}
			evs := pub.events(t)
			if len(evs) != 4 || evs[1].Action != "tool.decided" || evs[1].Tenant != "acme" {
				t.Fatalf("%d events: %+v", len(evs), evs)
			}
			// An exporter retrying the same batch (after a timeout) stores nothing twice.
			if r := postOTLP(t, s, tokLogs, tc.ctype, tc.enc, tc.body); r.code != 200 || len(pub.events(t)) != 4 {
				t.Errorf("retry: %d, %d events", r.code, len(pub.events(t)))
			}
		})
	}
}

func TestOTLPHTTPErrors(t *testing.T) {
	pb := protoBody(t, fixtureExport(t))
	bomb := gz(bytes.Repeat([]byte{0}, 8<<20)) // 8 MiB of zeros in a few KiB
	for _, tc := range []struct {
		name, token, ctype, enc string
		body                    []byte
		want                    int
	}{
		{"not protobuf", tokLogs, otlpProto, "", []byte("\xff\xff\xff\xffnot protobuf"), 400},
		{"not json", tokLogs, otlpJSON, "", []byte("{"), 400},
		{"wrong content type", tokLogs, "text/plain", "", pb, 415},
		{"unknown encoding", tokLogs, otlpProto, "br", pb, 415},
		{"not gzip", tokLogs, otlpProto, "gzip", pb, 400},
		{"gzip bomb", tokLogs, otlpProto, "gzip", bomb, 413},
		{"no scope", tokSarah, otlpProto, "", pb, 403},
		{"no token", "", otlpProto, "", pb, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{failAt: -1}
			s := newTestServer(t, pub)
			if r := postOTLP(t, s, tc.token, tc.ctype, tc.enc, tc.body); r.code != tc.want {
				t.Fatalf("%d %q, want %d", r.code, r.body, tc.want)
			}
			if len(pub.events(t)) != 0 {
				t.Error("events stored")
			}
		})
	}
}

// TestOTLPPartialSuccessAndUnavailable: a bad record is rejected alone and counted in
// partial_success; a broker failure is 503 with Retry-After and a google.rpc.Status.
func TestOTLPPartialSuccessAndUnavailable(t *testing.T) {
	er := fixtureExport(t)
	er.Logs().ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(2).Attributes().PutStr("event.timestamp", "yesterday")
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	r := postOTLP(t, s, tokLogs, otlpProto, "", protoBody(t, er))
	ps := exportResponse(t, r).PartialSuccess()
	if r.code != 200 || ps.RejectedLogRecords() != 1 || !strings.Contains(ps.ErrorMessage(), "event.timestamp") || len(pub.events(t)) != 3 {
		t.Fatalf("%d rejected %d %q, %d stored", r.code, ps.RejectedLogRecords(), ps.ErrorMessage(), len(pub.events(t)))
	}

	down := &memPublisher{failAt: -1, fail: errors.New("NOT_ENOUGH_REPLICAS")}
	s = newTestServer(t, down)
	r = postOTLP(t, s, tokLogs, otlpProto, "", protoBody(t, fixtureExport(t)))
	var st spb.Status
	if r.code != 503 || r.header.Get("Retry-After") == "" || proto.Unmarshal(r.body, &st) != nil || st.GetCode() != 14 {
		t.Fatalf("%d Retry-After %q status %v", r.code, r.header.Get("Retry-After"), &st)
	}
}

func TestOTLPSampling(t *testing.T) {
	logs := plog.NewLogs()
	sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for i := range 200 {
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr("claude_code.api_request")
		lr.Attributes().PutStr("session.id", "s1")
		lr.Attributes().PutInt("event.sequence", int64(i))
		lr.Attributes().PutStr("model", "m")
	}
	er := plogotlp.NewExportRequestFromLogs(logs)
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	s.o.OTLPSample = map[string]map[string]float64{"*": {"api_request": 0.25}}
	if r := postOTLP(t, s, tokLogs, otlpProto, "", protoBody(t, er)); r.code != 200 {
		t.Fatalf("%d %q", r.code, r.body)
	}
	if n := len(pub.events(t)); n < 25 || n > 80 {
		t.Errorf("%d of 200 stored at a 0.25 rate", n)
	}
}

func FuzzOTLPHTTP(f *testing.F) {
	f.Add(protoBody(f, fixtureExport(f)), false)
	js, _ := fixtureExport(f).MarshalJSON()
	f.Add(js, true)
	f.Add([]byte{0x0a, 0x00}, false)
	s := newTestServer(f, &memPublisher{failAt: -1})
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		ctype := otlpProto
		if isJSON {
			ctype = otlpJSON
		}
		r := postOTLP(t, s, tokLogs, ctype, "", body)
		if r.code >= 500 {
			t.Fatalf("%d for %q: %s", r.code, body, r.body)
		}
	})
}
