package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
)

// proc is a cmd/chainer process that the test kills with SIGKILL and restarts.
type proc struct {
	t    *testing.T
	bin  string
	env  []string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
	kill int
}

func (p *proc) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	proctest.DieWithTest(cmd)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.bin, err)
	}
	p.cmd = cmd
}

func (p *proc) killRestart() {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	p.kill++
	p.start()
}

func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
		}
	}
}

func buildChainer(t *testing.T) string {
	t.Helper()
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(t.TempDir(), "chainer")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/chainer")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/chainer: %v\n%s", err, out)
	}
	return bin
}

// TestKill9ChainerAndWriter posts events through ingest while the chainer process and,
// separately, the ClickHouse writer process are killed with SIGKILL at random points
// and restarted. Afterwards every acknowledged event is in ClickHouse exactly once,
// every partition's chain and checkpoints verify, and seq has no gap or duplicate.
func TestKill9ChainerAndWriter(t *testing.T) {
	// Builds binaries before any helper runs: gate here, not only in the helpers.
	integration.Require(t, "Kafka and ClickHouse, and the chainer built and killed")
	const (
		events    = 100000
		batchSize = 500
		kills     = 5
	)
	broker := kafkatest.Shared(t)
	store := chtest.Store(t)
	prefix := kafkatest.Topic("crash")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := buildChainer(t)

	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{broker.Addr}, Topic: prefix + ".events"})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(ctx)
	if err := kafka.EnsureTopics(ctx, prod.Client(), kafka.Topic{Name: prefix + ".events", Partitions: 3, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	const tok = "tk_crash_registry_00000000000000000000001"
	var tokens []map[string]any
	for i := 0; i < 6; i++ { // six tenants spread over the three partitions
		tokens = append(tokens, map[string]any{"name": fmt.Sprintf("t%d", i), "sha256": sha(fmt.Sprintf("%s%d", tok, i)), "tenant": fmt.Sprintf("tenant-%d", i), "source": "registry", "scopes": []string{"events:write"}})
	}
	tokCfg, _ := json.Marshal(map[string]any{"tokens": tokens})
	ts, err := ingest.ParseTokens(tokCfg)
	if err != nil {
		t.Fatal(err)
	}
	red, _ := redact.New()
	srv, err := ingest.New(ingest.Options{Tokens: ts, Publisher: prod, Redactor: red, IPKey: []byte("crash-ip-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	skey, vkey, _ := chain.GenerateKey("crash")
	verifiers, _ := chain.NewVerifiers(vkey)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "chainer.log"))
	common := []string{
		"TRAILKEEP_KAFKA_BROKERS=" + broker.Addr, "TRAILKEEP_DEPLOYMENT=crash",
		"TRAILKEEP_EVENTS_TOPIC=" + prefix + ".events", "TRAILKEEP_CHAINED_TOPIC=" + prefix + ".chained",
		"TRAILKEEP_CHECKPOINTS_TOPIC=" + prefix + ".checkpoints", "TRAILKEEP_DEADLETTER_TOPIC=" + prefix + ".deadletter",
		"TRAILKEEP_SIGNER_KEY=" + skey, "TRAILKEEP_CHECKPOINT_EVERY=250", "TRAILKEEP_CHECKPOINT_INTERVAL=1s",
		"TRAILKEEP_CHAINER_GROUP=" + prefix + "-chainer", "TRAILKEEP_CHAINER_TRANSACTIONAL_ID=" + prefix + "-chainer-0",
		"TRAILKEEP_CLICKHOUSE_ADDR=" + chtest.Addr, "TRAILKEEP_CLICKHOUSE_DATABASE=" + store.Database(),
		"TRAILKEEP_WRITER_GROUP=" + prefix + "-writer", "TRAILKEEP_WRITER_BATCH_ROWS=2000", "TRAILKEEP_WRITER_BATCH_AGE=200ms",
		"TRAILKEEP_LOG_LEVEL=warn", "TRAILKEEP_CHAINER_ADDR=127.0.0.1:0", // two processes side by side
	}
	chainerProc := &proc{t: t, bin: bin, log: logf, env: append([]string{"TRAILKEEP_WRITER_ENABLED=false"}, common...)}
	writerProc := &proc{t: t, bin: bin, log: logf, env: append([]string{"TRAILKEEP_CHAINER_ENABLED=false"}, common...)}
	chainerProc.start()
	writerProc.start()
	defer chainerProc.stop()
	defer writerProc.stop()
	for !prod.Ready() {
		time.Sleep(50 * time.Millisecond)
	}

	// Load: batches of canonical events, each from one of six tenants.
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	loadDone := make(chan error, 1)
	loadStart := time.Now()
	go func() {
		for sent := 0; sent < events; sent += batchSize {
			var body bytes.Buffer
			for i := 0; i < batchSize; i++ {
				fmt.Fprintf(&body, `{"action":"skill.updated","actor":{"type":"user","id":"u%d"},"resource":{"type":"skill","id":"s%d"}}`+"\n", i, sent+i)
			}
			tn := (sent / batchSize) % 6
			for {
				req, _ := http.NewRequest("POST", hs.URL+"/v1/events", bytes.NewReader(body.Bytes()))
				req.Header.Set("Authorization", fmt.Sprintf("Bearer %s%d", tok, tn))
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					loadDone <- err
					return
				}
				var br struct {
					Results []struct{ ID, Status string }
				}
				json.NewDecoder(resp.Body).Decode(&br)
				resp.Body.Close()
				if resp.StatusCode == 503 {
					time.Sleep(100 * time.Millisecond)
					continue // nothing acknowledged; post again
				}
				if resp.StatusCode != 200 {
					loadDone <- fmt.Errorf("status %d", resp.StatusCode)
					return
				}
				mu.Lock()
				for _, r := range br.Results {
					acked[r.ID] = true
				}
				mu.Unlock()
				break
			}
		}
		t.Logf("load posted %d events in %s", events, time.Since(loadStart).Round(time.Millisecond))
		loadDone <- nil
	}()

	// Kill points: the chainer five times, then the writer five times, at random
	// moments while the load runs.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		chainerProc.killRestart()
	}
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		writerProc.killRestart()
	}
	if err := <-loadDone; err != nil {
		t.Fatalf("load: %v", err)
	}
	loaded := time.Now()
	t.Logf("%d events acknowledged; chainer killed %d times, writer %d times", len(acked), chainerProc.kill, writerProc.kill)

	deadline := time.Now().Add(3 * time.Minute)
	for {
		total := uint64(0)
		for p := int32(0); p < 3; p++ {
			if m, ok, err := store.MaxSeq(ctx, p); err == nil && ok {
				total += m + 1
			}
		}
		if total >= uint64(len(acked)) {
			t.Logf("ClickHouse caught up %s after the last acknowledgement", time.Since(loaded).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			logs, err := os.ReadFile(logf.Name())
			if err != nil {
				t.Fatal(err)
			}
			t.Fatalf("ClickHouse holds %d of %d acknowledged events\nchainer logs (tail):\n%s", total, len(acked), tailOf(string(logs), 3000))
		}
		time.Sleep(300 * time.Millisecond)
	}
	seen := map[string]int{}
	rows := 0
	for p := int32(0); p < 3; p++ {
		cps, err := store.Checkpoints(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		v, err := chain.NewVerifier(chain.Origin("crash", prefix+".chained", p), p, verifiers, cps)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Records(ctx, p, 0, func(r chain.Record) error {
			var head struct{ ID string }
			if err := json.Unmarshal(r.Event, &head); err != nil {
				t.Fatal(err)
			}
			seen[head.ID]++
			rows++
			return v.Add(r)
		}); err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		if _, err := v.Finish(); err != nil {
			t.Fatalf("partition %d does not verify after the kills: %v", p, err)
		}
	}
	missing, dup := 0, 0
	for id := range acked {
		switch seen[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 || rows != len(acked) {
		t.Fatalf("after kill -9: %d rows for %d acknowledged events; %d missing, %d duplicated", rows, len(acked), missing, dup)
	}
}

func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
