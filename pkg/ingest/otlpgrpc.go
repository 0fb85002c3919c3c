package ingest

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// RegisterOTLP registers the OTLP gRPC logs service (opentelemetry.proto.collector.
// logs.v1.LogsService) on g. It shares everything with POST /v1/logs: the bearer
// token (the "authorization" metadata), scope logs:write, the in-flight budget,
// the mapping, deduplication and redaction, and answers only after Kafka
// acknowledged. Failures use the codes OTLP names: Unauthenticated,
// PermissionDenied, ResourceExhausted and Unavailable (retryable: exporters back off).
func (s *Server) RegisterOTLP(g *grpc.Server) {
	plogotlp.RegisterGRPCServer(g, &otlpGRPC{s: s})
}

type otlpGRPC struct {
	plogotlp.UnimplementedGRPCServer
	s *Server
}

func (o *otlpGRPC) Export(ctx context.Context, er plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s := o.s
	start := time.Now()
	code := codes.OK
	defer func() {
		s.m.duration.WithLabelValues("otlp_grpc", code.String()).Observe(time.Since(start).Seconds())
	}()
	fail := func(c codes.Code, reason, msg string) (plogotlp.ExportResponse, error) {
		code = c
		s.m.rejected.WithLabelValues("otlp_grpc", reason).Inc()
		return plogotlp.NewExportResponse(), status.Error(c, msg)
	}
	hr, _ := http.NewRequestWithContext(ctx, "POST", "/opentelemetry.proto.collector.logs.v1.LogsService/Export", http.NoBody)
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			hr.Header.Add("Authorization", v)
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		hr.RemoteAddr = p.Addr.String()
	}
	p, err := s.o.Tokens.authenticate(hr)
	if err != nil {
		return fail(codes.Unauthenticated, "unauthorized", err.Error())
	}
	if !p.has(ScopeLogs) {
		return fail(codes.PermissionDenied, "forbidden", fmt.Sprintf("token %q lacks scope %s", p.Token.Name, ScopeLogs))
	}
	if !s.o.Publisher.Ready() {
		return fail(codes.Unavailable, "broker_unreachable", "no Kafka broker has answered the last probe; nothing was accepted, retry later")
	}
	// gRPC already decoded the request; the budget counts its wire size, computed
	// without encoding it again.
	reserve := int64((&plog.ProtoMarshaler{}).LogsSize(er.Logs()))
	if reserve > s.o.MaxBodyBytes {
		return fail(codes.ResourceExhausted, "maxBytes", fmt.Sprintf("the request exceeds %d bytes; export smaller batches", s.o.MaxBodyBytes))
	}
	if !s.inFlight.TryAcquire(reserve) {
		return fail(codes.Unavailable, "at_capacity", "ingest is at capacity; nothing was accepted, retry later")
	}
	defer s.inFlight.Release(reserve)
	s.m.bytes.WithLabelValues("otlp_grpc").Add(float64(reserve))
	req := &request{r: hr, principal: p, clientIP: s.clientIP(hr), now: s.o.Now().UTC()}
	results := s.process(ctx, "otlp", req, s.mapOTLP(er.Logs(), p, req.now))
	resp := plogotlp.NewExportResponse()
	rejected, unavailable := 0, 0
	first := ""
	for _, r := range results {
		switch r.Status {
		case statusRejected:
			rejected++
			if first == "" && len(r.Errors) > 0 {
				first = fmt.Sprintf("record %d: %s", r.Index, r.Errors[0].Error())
			}
		case statusUnavailable:
			unavailable++
		}
	}
	if unavailable > 0 {
		return fail(codes.Unavailable, "unavailable", fmt.Sprintf("%d of %d log records were not acknowledged by Kafka; retry the export", unavailable, len(results)))
	}
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(first)
	}
	return resp, nil
}
