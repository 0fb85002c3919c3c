package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chdb"
	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/internal/repo"
	"github.com/trailkeep/trailkeep/internal/trialsecrets"
)

// devInstance is a `trailkeep dev` process on its own data directory and ports.
type devInstance struct {
	t                testing.TB
	bin, trailctl    string
	data, ingest, qy string
	env              []string
	cmd              *exec.Cmd
	done             chan error
	log              *os.File
	tokens           map[string]string
	args             []string // more trailkeep dev flags
}

func newDev(t testing.TB) *devInstance {
	t.Helper()
	integration.Require(t, "trailkeep dev (embedded broker and the in-process ClickHouse engine)")
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	lib, err := chdb.Fetch(filepath.Join(root, ".run", "chdb"), os.Stderr)
	if err != nil {
		t.Fatalf("the ClickHouse engine: %v", err)
	}
	d := &devInstance{t: t, bin: proctest.Build(t, "trailkeep"), trailctl: proctest.Build(t, "trailctl"),
		data: filepath.Join(t.TempDir(), "data"), ingest: proctest.Addr(t), qy: proctest.Addr(t),
		env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), chdb.LibraryEnv + "=" + lib}}
	log, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.log = log
	t.Cleanup(func() { d.stop(); log.Close() })
	return d
}

// start runs the process and waits for its banner (everything ready).
func (d *devInstance) start() {
	d.t.Helper()
	d.cmd = exec.Command(d.bin, append([]string{"dev", "--data-dir", d.data, "--ingest-addr", d.ingest, "--query-addr", d.qy, "--log-level", "warn"}, d.args...)...)
	d.cmd.Env = d.env
	proctest.DieWithTest(d.cmd)
	pr, pw := io.Pipe()
	d.cmd.Stdout, d.cmd.Stderr = io.MultiWriter(pw, d.log), d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { err := d.cmd.Wait(); pw.Close(); d.done <- err }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		ok := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "trailkeep dev is running") && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			d.t.Fatalf("trailkeep dev exited before it was ready:\n%s", d.logText())
		}
	case <-time.After(3 * time.Minute):
		d.t.Fatalf("trailkeep dev not ready in 3 minutes:\n%s", d.logText())
	}
	toks, err := trialsecrets.Tokens(filepath.Join(d.data, "secrets"))
	if err != nil {
		d.t.Fatal(err)
	}
	d.tokens = toks
}

func (d *devInstance) logText() string {
	b, err := os.ReadFile(d.log.Name())
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	return tailOf(string(b), 4000)
}

// countInLog counts the lines of the whole log (every run) that contain s.
func (d *devInstance) countInLog(s string) int {
	b, err := os.ReadFile(d.log.Name())
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.Count(string(b), s)
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *devInstance) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.cmd = nil
}

// stop ends the process with SIGTERM; it must exit 0.
func (d *devInstance) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("trailkeep dev did not exit cleanly on SIGTERM: %v\n%s", err, d.logText())
		}
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		d.t.Errorf("trailkeep dev still running 60 s after SIGTERM\n%s", d.logText())
	}
	d.cmd = nil
}

// post sends body to an ingest endpoint with a token and returns status and body.
func (d *devInstance) post(path, token, contentType string, body []byte) (int, []byte) {
	return httpPost("http://"+d.ingest+path, token, contentType, body)
}

// httpPost posts body with a bearer token; a transport error or an answer cut off
// is status 0 (not an acknowledgement).
func httpPost(url, token, contentType string, body []byte) (int, []byte) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, b
}

// sql runs read-only SQL through the query API with the admin token.
func (d *devInstance) sql(stmt string) [][]any {
	d.t.Helper()
	return sqlAPI(d.t, "http://"+d.qy, d.tokens["ADMIN_TOKEN"], stmt)
}

// sqlAPI runs read-only SQL through the query API at url.
func sqlAPI(t testing.TB, url, token, stmt string) [][]any {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"sql": stmt})
	code, b := httpPost(url+"/v1/sql", token, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("SQL %q: %d %s", stmt, code, b)
	}
	var out struct {
		Rows [][]any `json:"rows"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("SQL %q: %v: %s", stmt, err, b)
	}
	return out.Rows
}

// ctl runs trailctl with the admin token and returns output and exit code.
func (d *devInstance) ctl(args ...string) (string, int) {
	return runCtl(d.trailctl, d.env, d.tokens["ADMIN_TOKEN"], args...)
}

// runCtl runs the trailctl binary with env and the query token; a binary that
// could not run is exit code -1.
func runCtl(bin string, env []string, token string, args ...string) (string, int) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append([]string(nil), env...), "TRAILKEEP_QUERY_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return err.Error(), -1
	}
	return string(out), 0
}

// eventually retries check until it returns "" or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestDevModeSurvivesKill9: under a steady load of NDJSON batches, trailkeep dev is
// killed with SIGKILL at five random moments and restarted on the same data
// directory. Every event ingest acknowledged is then stored exactly once, and the
// archive (chain, segments and checkpoints from seq 0) verifies.
//
// Kills inside the chainer's transactions are the cases that matter. The embedded
// broker's crash recovery aborts an open one without a marker, and a kill while it
// commits one can leave the records committed without the consumer offsets;
// internal/devlog repairs both at start (recover.go). Before, this test stalled the
// restore, or found events chained twice.
func TestDevModeSurvivesKill9(t *testing.T) {
	d := newDev(t)
	d.start()
	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the load: batches of 20 events, as fast as ingest answers
		defer wg.Done()
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			var body bytes.Buffer
			for i := 0; i < 20; i++ {
				fmt.Fprintf(&body, `{"action":"test.crashed","actor":{"type":"service","id":"load"},"resource":{"type":"batch","id":"b%d-%d"}}`+"\n", b, i)
			}
			code, resp := d.post("/v1/events", d.tokens["REGISTRY_TOKEN"], "application/x-ndjson", body.Bytes())
			if code/100 != 2 {
				time.Sleep(50 * time.Millisecond) // down or restarting: not acknowledged
				continue
			}
			var r struct {
				Results []struct{ Status, ID string }
			}
			if json.Unmarshal(resp, &r) == nil {
				mu.Lock()
				for _, it := range r.Results {
					if it.Status == "accepted" {
						acked[it.ID] = true
					}
				}
				mu.Unlock()
			}
		}
	}()
	// Each kill lands while events are being chained and stored (after the stored
	// count has grown since the restart), at a random moment within the next
	// 1.5 s: a kill during start-up alone would leave the chainer's transactions
	// untouched.
	storedCount := func() int {
		rows := d.sql("SELECT count() AS n FROM audit_events WHERE action = 'test.crashed'")
		if len(rows) != 1 {
			t.Fatalf("count: %v", rows)
		}
		return int(rows[0][0].(float64))
	}
	for i := 0; i < 5; i++ {
		before := storedCount()
		eventually(t, 60*time.Second, func() string {
			if n := storedCount(); n <= before {
				return fmt.Sprintf("restart %d: nothing stored since (%d events)\n%s", i, n, d.logText())
			}
			return ""
		})
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
		d.kill()
		d.start()
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	if want == 0 {
		t.Fatal("no event was acknowledged under load")
	}
	waitStart := time.Now()
	eventually(t, 60*time.Second, func() string {
		rows := d.sql("SELECT count() AS n, uniqExact(event_id) AS u FROM audit_events WHERE action = 'test.crashed'")
		if len(rows) != 1 || rows[0][0] != rows[0][1] || int(rows[0][1].(float64)) < want {
			// Stored twice: under one (partition, seq) is a second insert of a row;
			// under two seqs the event was chained twice.
			dups := d.sql("SELECT event_id, groupArray(chain_partition) AS p, groupArray(seq) AS s FROM audit_events WHERE action = 'test.crashed' GROUP BY event_id HAVING count() > 1 ORDER BY event_id LIMIT 5")
			return fmt.Sprintf("stored (rows, distinct ids) = %v; want %d distinct acknowledged events, each once; stored more than once: %v\n%s", rows, want, dups, d.logText())
		}
		return ""
	})
	t.Logf("all stored %v after the load stopped", time.Since(waitStart))
	// Every acknowledged id is among them (a lost one hidden by an unacknowledged
	// duplicate would keep the counts right).
	stored := map[string]bool{}
	for lo := 0; ; lo += 5000 {
		rows := d.sql(fmt.Sprintf("SELECT event_id FROM audit_events WHERE action = 'test.crashed' ORDER BY event_id LIMIT 5000 OFFSET %d", lo))
		for _, r := range rows {
			stored[r[0].(string)] = true
		}
		if len(rows) < 5000 {
			break
		}
	}
	for id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged event %s was lost (stored %d of %d acknowledged)", id, len(stored), want)
		}
	}
	pub := filepath.Join(d.data, "secrets", "checkpoints.pub")
	eventually(t, 60*time.Second, func() string {
		out, code := d.ctl("verify", "--s3", "file://"+filepath.Join(d.data, "archive"), "--deployment", "dev", "--pubkey", pub)
		if code != 0 {
			return fmt.Sprintf("archive verify after 5 kills: exit %d\n%s", code, tailOf(out, 2000))
		}
		return ""
	})
	t.Logf("%d events acknowledged under 5 SIGKILLs, all stored once; archive verified; %d restart(s) sealed a transaction the kill left open, %d moved the chainer past a transaction committed without its offsets",
		want, d.countInLog("wrote its abort marker"), d.countInLog("moved the chainer past"))
}
