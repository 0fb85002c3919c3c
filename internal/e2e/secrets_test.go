package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/internal/secretcorpus"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/sink"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// secretPayloads plants one secret in the fields where senders most often put them,
// on each of the three endpoints.
func secretPayloads(secret string, i int) []struct {
	path, tok, ctype string
	body             []byte
} {
	j := func(v any) []byte { b, _ := json.Marshal(v); return b }
	hook := func(event string, extra map[string]any) []byte {
		p := map[string]any{"session_id": fmt.Sprintf("s%d", i), "hook_event_name": event, "cwd": "/w", "tool_name": "Bash",
			"tool_use_id": fmt.Sprintf("t%d-%s", i, event), "tool_input": map[string]any{"command": "make"}}
		for k, v := range extra {
			p[k] = v
		}
		return j(p)
	}
	return []struct {
		path, tok, ctype string
		body             []byte
	}{
		{"/v1/hooks/claude-code", hookTok, "application/json", hook("PreToolUse", map[string]any{
			"tool_input": map[string]any{"command": "deploy " + secret, secret: "as a key"}})},
		{"/v1/hooks/claude-code", hookTok, "application/json", hook("PostToolUseFailure", map[string]any{"error": "failed: " + secret})},
		{"/v1/hooks/claude-code", hookTok, "application/json", hook("PermissionDenied", map[string]any{"reason": "blocked " + secret})},
		{"/v1/hooks/claude-code", hookTok, "application/json", hook("Notification", map[string]any{"message": "see " + secret, "new_field": secret})},
		{"/v1/events", regTok, "application/json", j(map[string]any{"id": fmt.Sprintf("c%d-", i) + secret, "action": "skill.updated",
			"actor":    map[string]any{"type": "user", "id": "u-" + secret, "name": "n " + secret},
			"resource": map[string]any{"type": "skill", "id": "s1", "name": secret},
			"result":   map[string]any{"status": "failure", "reason": secret},
			"metadata": map[string]any{"note": "x " + secret}})},
		{"/v1/cloudevents", regTok, "application/cloudevents+json", j(map[string]any{"specversion": "1.0", "type": "skill.updated",
			"source": "https://ci:" + secret + "@reg.example/x", "id": fmt.Sprintf("e%d", i), "subject": "skl_1",
			"data": map[string]any{"actor": map[string]any{"type": "user", "id": "u1"}, "reason": secret}})},
	}
}

// TestNoSecretReachesAnyStore sends every secret of the corpus through the real
// pipeline — ingest, Kafka, the chainer, the ClickHouse writer and the S3 Object Lock
// archive — and then reads back every byte each of them holds: the audit.events,
// chained and checkpoint topics, every column of every ClickHouse row, an export in
// every format and every archive object (decompressed). No secret may be in any.
func TestNoSecretReachesAnyStore(t *testing.T) {
	// Builds binaries before any helper runs: gate here, not only in the helpers.
	integration.Require(t, "Kafka, ClickHouse and the S3 gateway")
	pl := startPipeline(t, "e2e-secrets", 2, 50)
	broker, store := pl.broker, pl.store
	gw := s3test.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	s3cl, err := sinks3.NewClient(ctx, gw.ClientConfig(sinks3.ChecksumSHA256))
	if err != nil {
		t.Fatal(err)
	}
	bucket := gw.Bucket(t, true)
	archiveSink, err := sinks3.New(sinks3.Config{Client: s3cl, Bucket: bucket, Prefix: "audit", Mode: types.ObjectLockModeCompliance, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := sink.NewRunner(archiveSink, sink.Config{Brokers: []string{broker.Addr}, Group: pl.prefix + "-s3", ChainedTopic: pl.chained,
		CheckpointTopic: pl.cps, DeadLetterTopic: pl.chained + ".dlq", BatchRecords: 200, Linger: 100 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pl.run(runner.Run)

	secrets := secretcorpus.Read(t)
	accepted := 0
	for i, sec := range secrets {
		for _, p := range secretPayloads(sec.Text, i) {
			req, _ := http.NewRequest("POST", pl.url+p.path, bytes.NewReader(p.body))
			req.Header.Set("Authorization", "Bearer "+p.tok)
			req.Header.Set("Content-Type", p.ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if bytes.Contains(body, []byte(sec.Core)) {
				t.Errorf("%s: %s answer echoes the secret", sec.Rule, p.path)
			}
			switch {
			case resp.StatusCode == 200 && p.path == "/v1/hooks/claude-code":
				accepted++
			case resp.StatusCode == 200:
				var b struct{ Accepted int }
				if err := json.Unmarshal(body, &b); err != nil {
					t.Fatal(err)
				}
				accepted += b.Accepted
			case p.path == "/v1/hooks/claude-code":
				t.Errorf("%s: hook refused (%d %s); a hook is never lost for carrying a secret", sec.Rule, resp.StatusCode, body)
			}
		}
	}
	if accepted < len(secrets)*4 {
		t.Fatalf("only %d events accepted for %d secrets", accepted, len(secrets))
	}

	// Everything in ClickHouse, checkpointed, and in the archive.
	waitFor(t, 2*time.Minute, func() error {
		total := 0
		for p := int32(0); p < 2; p++ {
			m, ok, err := store.MaxSeq(ctx, p)
			if err != nil {
				return err
			}
			if ok {
				total += int(m) + 1
			}
		}
		if total < accepted {
			return fmt.Errorf("ClickHouse holds %d of %d events", total, accepted)
		}
		if st := runner.Stats(); st.Acknowledged < int64(accepted) {
			return fmt.Errorf("archive acknowledged %d of %d records", st.Acknowledged, accepted)
		}
		return nil
	})

	type place struct {
		name  string
		bytes []byte
	}
	var places []place
	for _, topic := range []string{pl.events, pl.chained, pl.cps, pl.dead} {
		places = append(places, place{"kafka " + topic, readTopic(t, broker.Addr, topic)})
	}
	var rows bytes.Buffer
	if _, err := store.ReadOnly(ctx, "SELECT * FROM "+store.Database()+".audit_events", clickhouse.SQLLimits{MaxRows: 100000, MaxTime: time.Minute}, func([]clickhouse.Column) error { return nil },
		func(r []any) error { fmt.Fprintln(&rows, r...); return nil }); err != nil {
		t.Fatal(err)
	}
	places = append(places, place{"clickhouse audit_events", rows.Bytes()})
	for _, f := range export.Formats {
		var out bytes.Buffer
		enc, err := export.NewEncoder(f, &out)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Export(ctx, clickhouse.ExportRequest{Tenants: []string{"acme", "acme-platform"}}, func(r chain.Record) error {
			ev, err := event.Unmarshal(r.Event)
			if err != nil {
				return err
			}
			return enc.Write(r, ev)
		}); err != nil {
			t.Fatalf("export %s: %v", f, err)
		}
		enc.Close()
		places = append(places, place{"export " + f, out.Bytes()})
	}
	objects := 0
	for _, o := range listObjects(t, gw.Client(t, sinks3.ChecksumSHA256), bucket) {
		objects++
		places = append(places, place{"s3 " + o.name, o.data})
	}
	if objects == 0 {
		t.Fatal("the archive holds no objects")
	}
	for _, p := range places {
		for _, sec := range secrets {
			if bytes.Contains(p.bytes, []byte(sec.Core)) {
				t.Errorf("%s holds a %s secret", p.name, sec.Rule)
			}
		}
	}
	t.Logf("%d events; scanned %d places (%d archive objects)", accepted, len(places), objects)
}

func waitFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readTopic returns every record value and header of topic, committed or not, to
// the end offsets it has now (an idle window could stop before a slow fetch and let
// the test pass on less than the topic holds).
func readTopic(t *testing.T, broker, topic string) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, r := range kafkatest.ReadEverything(t, broker, topic) {
		out.Write(r.Key)
		out.Write(r.Value)
		for _, h := range r.Headers {
			out.WriteString(h.Key)
			out.Write(h.Value)
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

type object struct {
	name string
	data []byte
}

// bucketObjects reads every current object of bucket as stored.
func bucketObjects(t *testing.T, cl *s3.Client, bucket string) []object {
	t.Helper()
	ctx := context.Background()
	var out []object
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			g, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(g.Body)
			g.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, object{aws.ToString(o.Key), data})
		}
	}
	return out
}

// listObjects reads every object of bucket; a compressed one's text is appended
// to its bytes, so a search finds what it holds.
func listObjects(t *testing.T, cl *s3.Client, bucket string) []object {
	t.Helper()
	out := bucketObjects(t, cl, bucket)
	for i, o := range out {
		if zr, err := gzip.NewReader(bytes.NewReader(o.data)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				out[i].data = append(o.data, plain...)
			}
		}
	}
	return out
}
