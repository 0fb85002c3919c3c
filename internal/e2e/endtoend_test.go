package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/internal/repo"
	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/internal/trialsecrets"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// deployment is a running trailkeep as a user reaches it: the ingest and query
// addresses, the trial tokens, the public key, and how trailctl reads its archive.
type deployment struct {
	ingest, query string            // base URLs
	tokens        map[string]string // HOOK_TOKEN, REGISTRY_TOKEN, ADMIN_TOKEN, ...
	secrets       string            // the trial secrets directory (checkpoints.pub)
	name          string            // the deployment name in checkpoint origins
	// verifyArchive are the trailctl verify arguments that select the archive.
	verifyArchive []string
	// archiveCopy copies the archive's objects into a directory (keys as paths),
	// which trailctl verify --s3 file://DIR reads.
	archiveCopy func(t *testing.T, dir string)
	trailctl    string
	env         []string // for trailctl
}

// ctl runs trailctl with the admin query token.
func (d *deployment) ctl(args ...string) (string, int) {
	return runCtl(d.trailctl, d.env, d.tokens["ADMIN_TOKEN"], args...)
}

// embedded is `trailkeep dev`.
func embedded(t *testing.T) *deployment {
	d := newDev(t)
	d.start()
	archive := filepath.Join(d.data, "archive")
	return &deployment{ingest: "http://" + d.ingest, query: "http://" + d.qy, tokens: d.tokens,
		secrets: filepath.Join(d.data, "secrets"), name: "dev", verifyArchive: []string{"--s3", "file://" + archive},
		archiveCopy: func(t *testing.T, dir string) {
			if out, err := exec.Command("cp", "-r", archive, dir).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
		},
		trailctl: d.trailctl, env: d.env}
}

// distributed is one process per service (ingest, chainer with the ClickHouse
// writer, query API, exporter) on the real broker, ClickHouse server and S3
// gateway, with the same trial secrets trailkeep dev generates.
func distributed(t *testing.T) *deployment {
	integration.Require(t, "the distributed deployment: Kafka, ClickHouse, the S3 gateway and every service binary")
	broker, store, s3srv := kafkatest.Shared(t), chtest.Store(t), s3test.Shared(t)
	bucket := s3srv.Bucket(t, true)
	prefix := kafkatest.Topic("e2e-stack")
	secrets := filepath.Join(t.TempDir(), "secrets")
	if err := trialsecrets.Init(secrets, "acme", "dev@acme.example"); err != nil {
		t.Fatal(err)
	}
	tokens, err := trialsecrets.Tokens(secrets)
	if err != nil {
		t.Fatal(err)
	}
	s := func(name string) string { return filepath.Join(secrets, name) }
	common := []string{"TRAILKEEP_KAFKA_BROKERS=" + broker.Addr, "TRAILKEEP_DEPLOYMENT=e2e",
		"TRAILKEEP_EVENTS_TOPIC=" + prefix + ".events", "TRAILKEEP_CHAINED_TOPIC=" + prefix + ".chained",
		"TRAILKEEP_CHECKPOINTS_TOPIC=" + prefix + ".checkpoints", "TRAILKEEP_DEADLETTER_TOPIC=" + prefix + ".deadletter",
		"TRAILKEEP_CLICKHOUSE_ADDR=" + chtest.Addr, "TRAILKEEP_CLICKHOUSE_DATABASE=" + store.Database()}
	ingestAddr, queryAddr := proctest.Addr(t), proctest.Addr(t)
	ing := proctest.Start(t, proctest.Build(t, "ingest"), append(common, "TRAILKEEP_INGEST_ADDR="+ingestAddr,
		"TRAILKEEP_INGEST_OTLP_GRPC_ADDR=", "TRAILKEEP_INGEST_TOKENS_FILE="+s(trialsecrets.IngestTokens),
		"TRAILKEEP_INGEST_IP_KEY_FILE="+s(trialsecrets.IPKey))...)
	ing.WaitStatus(t, "http://"+ingestAddr+"/readyz", http.StatusOK, 60*time.Second)
	proctest.Start(t, proctest.Build(t, "chainer"), append(common, "TRAILKEEP_SIGNER_KEY_FILE="+s(trialsecrets.SignerKey),
		"TRAILKEEP_CHAINER_TRANSACTIONAL_ID="+prefix+"-0", "TRAILKEEP_CHAINER_GROUP="+prefix+"-chainer",
		"TRAILKEEP_WRITER_GROUP="+prefix+"-writer", "TRAILKEEP_CHAINER_ADDR="+proctest.Addr(t),
		"TRAILKEEP_CHECKPOINT_INTERVAL=500ms", "TRAILKEEP_WRITER_BATCH_AGE=200ms")...)
	waitTopic(t, broker.Addr, prefix+".chained")
	qp := proctest.Start(t, proctest.Build(t, "query"), append(common, "TRAILKEEP_QUERY_ADDR="+queryAddr,
		"TRAILKEEP_QUERY_TOKENS_FILE="+s(trialsecrets.QueryTokens))...)
	qp.WaitStatus(t, "http://"+queryAddr+"/readyz", http.StatusOK, 60*time.Second)
	proctest.Start(t, proctest.Build(t, "exporter"), append(common, "TRAILKEEP_EXPORTER_SINKS=s3",
		"TRAILKEEP_EXPORTER_ADDR="+proctest.Addr(t), "TRAILKEEP_EXPORTER_GROUP_PREFIX="+prefix+"-exporter-",
		"TRAILKEEP_S3_BUCKET="+bucket, "TRAILKEEP_S3_ENDPOINT="+s3srv.Endpoint, "TRAILKEEP_S3_PATH_STYLE=true",
		"TRAILKEEP_S3_ACCESS_KEY="+s3srv.AccessKey, "TRAILKEEP_S3_SECRET_KEY="+s3srv.SecretKey,
		"TRAILKEEP_S3_LOCK_MODE=GOVERNANCE", "TRAILKEEP_S3_RETENTION=1d", "TRAILKEEP_S3_LINGER=2s")...)
	return &deployment{ingest: "http://" + ingestAddr, query: "http://" + queryAddr, tokens: tokens, secrets: secrets, name: "e2e",
		verifyArchive: []string{"--s3", "s3://" + bucket, "--s3-endpoint", s3srv.Endpoint, "--s3-path-style", "--topic", prefix + ".chained"},
		archiveCopy:   func(t *testing.T, dir string) { downloadBucket(t, s3srv, bucket, dir) },
		trailctl:      proctest.Build(t, "trailctl"),
		env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"AWS_ACCESS_KEY_ID=" + s3srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3srv.SecretKey}}
}

// waitTopic waits until the chainer has created topic.
func waitTopic(t *testing.T, addr, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	eventually(t, 60*time.Second, func() string {
		if _, err := kafka.PartitionCount(context.Background(), cl, topic); err != nil {
			return err.Error()
		}
		return ""
	})
}

// downloadBucket writes every current object of bucket to dir/<key>.
func downloadBucket(t *testing.T, srv *s3test.Server, bucket, dir string) {
	for _, o := range bucketObjects(t, srv.Client(t, ""), bucket) {
		dst := filepath.Join(dir, filepath.FromSlash(o.name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, o.data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEndToEnd runs the same user journey on both ways to run trailkeep: the
// shared fixtures go in; they are found by search and SQL through the query API;
// an event's inclusion proof verifies against the public key; the archive
// verifies offline; and an edited copy of it fails verification naming the object.
func TestEndToEnd(t *testing.T) {
	for _, mode := range []struct {
		name  string
		start func(t *testing.T) *deployment
	}{
		{"embedded", embedded},
		{"distributed", distributed},
	} {
		t.Run(mode.name, func(t *testing.T) { journey(t, mode.start(t)) })
	}
}

func journey(t *testing.T, d *deployment) {
	nHooks, nReg := postFixtures(t, d)
	t.Run("search and SQL", func(t *testing.T) {
		eventually(t, 60*time.Second, func() string {
			out, code := d.ctl("search", "--api", d.query, "tenant:acme", "--limit", "200", "-o", "json")
			if n := strings.Count(strings.TrimSpace(out), "\n") + 1; code != 0 || n < nHooks+nReg {
				return fmt.Sprintf("search found %d events (exit %d), want at least %d hooks + %d registry events\n%.500s", n, code, nHooks, nReg, out)
			}
			return ""
		})
		rows := sqlAPI(t, d.query, d.tokens["ADMIN_TOKEN"], "SELECT count() AS n FROM audit_events WHERE tenant = 'acme' AND action LIKE 'skill.%'")
		if len(rows) != 1 || rows[0][0] == float64(0) {
			t.Fatalf("SQL skill changes = %v", rows)
		}
	})
	t.Run("prove", func(t *testing.T) {
		out, code := d.ctl("search", "--api", d.query, "event:tool.*", "--limit", "1", "-o", "json")
		var hit struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
		}
		if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &hit); code != 0 || err != nil || hit.Event.ID == "" {
			t.Fatalf("search for an id: %v exit %d\n%s", err, code, out)
		}
		proof := filepath.Join(t.TempDir(), "proof.json")
		eventually(t, 30*time.Second, func() string { // the newest event waits for its checkpoint
			out, code := d.ctl("prove", "--api", d.query, hit.Event.ID)
			if code != 0 {
				return "prove: " + out
			}
			if err := os.WriteFile(proof, []byte(out), 0o600); err != nil {
				return err.Error()
			}
			return ""
		})
		if out, code := d.ctl("verify-proof", proof, "--verifier-key", filepath.Join(d.secrets, trialsecrets.SignerPub)); code != 0 || !strings.HasPrefix(out, "OK") {
			t.Fatalf("verify-proof: exit %d\n%s", code, out)
		}
	})
	t.Run("export through the API verifies", func(t *testing.T) {
		dir := t.TempDir()
		if out, code := d.ctl("keys", "generate", "exporter", "--dir", dir); code != 0 {
			t.Fatalf("keys generate: exit %d\n%s", code, out)
		}
		file := filepath.Join(dir, "acme.ndjson")
		out, code := d.ctl("export", "tenant:acme", "--api", d.query, "--out", file, "--signing-key", filepath.Join(dir, "exporter.key"), "--quiet")
		if code != 0 || !strings.Contains(out, "exported") {
			t.Fatalf("export --api: exit %d\n%s", code, out)
		}
		out, code = d.ctl("verify-export", file+".manifest", "--exporter-key", filepath.Join(dir, "exporter.pub"), "--verifier-key", filepath.Join(d.secrets, trialsecrets.SignerPub))
		if code != 0 || !strings.HasPrefix(out, "OK") {
			t.Fatalf("verify-export: exit %d\n%s", code, out)
		}
	})
	t.Run("archive verifies and tampering is caught", func(t *testing.T) {
		pub := filepath.Join(d.secrets, trialsecrets.SignerPub)
		eventually(t, 60*time.Second, func() string {
			out, code := d.ctl(append([]string{"verify", "--deployment", d.name, "--pubkey", pub}, d.verifyArchive...)...)
			if code != 0 || !strings.Contains(out, "OK") {
				return fmt.Sprintf("archive verify exit %d\n%s", code, out)
			}
			return ""
		})
		copyDir := filepath.Join(t.TempDir(), "tampered")
		d.archiveCopy(t, copyDir)
		var seg string
		filepath.WalkDir(copyDir, func(p string, e os.DirEntry, err error) error {
			if err == nil && seg == "" && strings.Contains(p, "tenant=acme") && strings.HasSuffix(p, ".ndjson.gz") {
				seg = p
			}
			return nil
		})
		if seg == "" {
			t.Fatal("no archived segment of tenant acme")
		}
		if err := os.Chmod(seg, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(seg, []byte("not the archived bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"verify", "--s3", "file://" + copyDir, "--deployment", d.name, "--pubkey", pub}
		if i := indexOf(d.verifyArchive, "--topic"); i >= 0 {
			args = append(args, d.verifyArchive[i:i+2]...)
		}
		out, code := d.ctl(args...)
		if code != 1 || !strings.Contains(out, filepath.Base(seg)) {
			t.Fatalf("tampered archive: exit %d, want 1 naming %s\n%s", code, filepath.Base(seg), out)
		}
	})
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// postFixtures posts the Claude Code session and the registry's events (moved to
// the trial tenant) and returns how many of each were accepted.
func postFixtures(t *testing.T, d *deployment) (hooks, registry int) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	fixtures := filepath.Join(root, "..", "shared", "fixtures")
	session, err := os.ReadFile(filepath.Join(fixtures, "claude-code", "session-basic.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(session, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if code, body := httpPost(d.ingest+"/v1/hooks/claude-code", d.tokens["HOOK_TOKEN"], "application/json", line); code != http.StatusOK {
			t.Fatalf("hook: %d %s", code, body)
		}
		hooks++
	}
	reg, err := os.ReadFile(filepath.Join(fixtures, "registry", "canonical-events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	reg = bytes.ReplaceAll(reg, []byte(`"tenant": "acme-platform"`), []byte(`"tenant": "acme"`))
	if code, body := httpPost(d.ingest+"/v1/events", d.tokens["REGISTRY_TOKEN"], "application/x-ndjson", reg); code/100 != 2 || bytes.Contains(body, []byte(`"rejected"`)) && !bytes.Contains(body, []byte(`"rejected":0`)) {
		t.Fatalf("registry events: %d %s", code, body)
	}
	return hooks, bytes.Count(bytes.TrimSpace(reg), []byte("\n")) + 1
}
