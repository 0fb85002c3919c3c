package ingest

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc"

	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// emitClaudeCodeSession emits, through the OpenTelemetry Go SDK, the records Claude
// Code sends for one approved and one rejected tool call.
func emitClaudeCodeSession(t *testing.T, exp sdklog.Exporter, session string) {
	t.Helper()
	ctx := context.Background()
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "claude-code"), attribute.String("service.version", "2.1.274"))))
	logger := lp.Logger("com.anthropic.claude_code.events")
	emit := func(name string, seq int64, kv ...attribute.KeyValue) {
		var r otellog.Record
		r.SetTimestamp(time.Now())
		r.SetBody(attribute.StringValue("claude_code." + name))
		r.AddAttributes(append([]attribute.KeyValue{attribute.String("event.name", name), attribute.String("session.id", session),
			attribute.String("user.email", "sarah@acme.example"), attribute.String("organization.id", "org_1"),
			attribute.Int64("event.sequence", seq), attribute.String("prompt.id", "p1")}, kv...)...)
		logger.Emit(ctx, r)
	}
	emit("user_prompt", 1, attribute.Int("prompt_length", 12))
	emit("tool_decision", 2, attribute.String("tool_name", "Bash"), attribute.String("tool_use_id", session+"-t1"), attribute.String("decision", "accept"), attribute.String("source", "user_temporary"))
	emit("tool_result", 3, attribute.String("tool_name", "Bash"), attribute.String("tool_use_id", session+"-t1"), attribute.String("success", "true"), attribute.String("duration_ms", "40"))
	emit("tool_decision", 4, attribute.String("tool_name", "Bash"), attribute.String("tool_use_id", session+"-t2"), attribute.String("decision", "reject"), attribute.String("source", "user_reject"))
	emit("api_request", 5, attribute.String("model", "claude-sonnet-4"), attribute.String("cost_usd", "0.01"))
	if err := lp.Shutdown(ctx); err != nil { // flushes
		t.Fatalf("exporter: %v", err)
	}
}

// TestOTLPFromTheOpenTelemetrySDK sends Claude Code-shaped records with the SDK's own
// OTLP log exporters — HTTP (protobuf, gzip) and gRPC — to the receiver in front of
// the real broker, and reads the canonical events back from Kafka.
func TestOTLPFromTheOpenTelemetrySDK(t *testing.T) {
	broker := kafkatest.Shared(t)
	topic := kafkatest.Topic("otlp")
	hs, s, _ := realStack(t, broker, topic, 10*time.Second)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.RegisterOTLP(g)
	go g.Serve(ln)
	defer g.Stop()

	ctx := context.Background()
	headers := map[string]string{"Authorization": "Bearer " + tokLogs}
	httpExp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(hs.URL+"/v1/logs"), otlploghttp.WithHeaders(headers),
		otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	emitClaudeCodeSession(t, httpExp, "http-session")
	grpcExp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(ln.Addr().String()), otlploggrpc.WithInsecure(), otlploggrpc.WithHeaders(headers))
	if err != nil {
		t.Fatal(err)
	}
	emitClaudeCodeSession(t, grpcExp, "grpc-session")

	recs := consume(t, broker.Addr, topic, 10)
	if len(recs) != 10 {
		t.Fatalf("%d events in Kafka, want 10", len(recs))
	}
	decisions := map[string]string{}
	for _, r := range recs {
		ev, err := event.CheckCanonical(r.Value, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Tenant != "acme" || ev.Source.Channel != "otlp_logs" || ev.Actor.ID != "sarah@acme.example" {
			t.Errorf("event %+v %+v", ev.Source, ev.Actor)
		}
		if ev.Action == "tool.decided" {
			decisions[ev.Session.ToolUseID] = ev.Approval.Decision + " by " + ev.Approval.DecidedBy
		}
	}
	for _, sess := range []string{"http-session", "grpc-session"} {
		if decisions[sess+"-t1"] != "approved by sarah@acme.example" || decisions[sess+"-t2"] != "denied by sarah@acme.example" {
			t.Errorf("%s decisions %v", sess, decisions)
		}
	}
}
