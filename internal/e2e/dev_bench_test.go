package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/proctest"
)

// BenchmarkDevMode measures `trailkeep dev` on this machine, everything co-located
// (load generator included): start-up time, sustained NDJSON ingest (8 connections,
// batches of 500 canonical events of ~450 bytes) with ack latency, the process's RSS
// once TRAILKEEP_BENCH_DEV_EVENTS (default 1M) are stored, and the first-page
// search latency over them. Run by make bench-dev; figures in BENCHMARKS.md.
func BenchmarkDevMode(b *testing.B) {
	total := 1_000_000
	if v := os.Getenv("TRAILKEEP_BENCH_DEV_EVENTS"); v != "" {
		total, _ = strconv.Atoi(v)
	}
	d := newDev(b)
	start := time.Now()
	pprofAddr := proctest.Addr(b)
	d.args = []string{"--pprof-addr", pprofAddr}
	d.start()
	b.ReportMetric(time.Since(start).Seconds(), "startup-s")

	const conns, batch = 8, 500
	var sent atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	pad := strings.Repeat("x", 180)
	loadStart := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body bytes.Buffer
			for n := 0; sent.Load() < int64(total); n++ {
				body.Reset()
				for i := 0; i < batch; i++ {
					fmt.Fprintf(&body, `{"action":"bench.event","actor":{"type":"user","id":"u%d"},"resource":{"type":"doc","id":"c%d-%d-%d"},"metadata":{"pad":%q}}`+"\n", i%50, c, n, i, pad)
				}
				t0 := time.Now()
				code, resp := d.post("/v1/events", d.tokens["REGISTRY_TOKEN"], "application/x-ndjson", body.Bytes())
				el := time.Since(t0)
				if code/100 != 2 || !bytes.Contains(resp, []byte(`"accepted":500`)) {
					b.Errorf("batch: %d %.300s", code, resp)
					return
				}
				sent.Add(batch)
				mu.Lock()
				lat = append(lat, el)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	acked := time.Since(loadStart)
	// Visible in the store: the writer has caught up.
	for {
		rows := d.sql("SELECT count() AS n FROM audit_events WHERE action = 'bench.event'")
		if len(rows) == 1 && int64(rows[0][0].(float64)) >= sent.Load() {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	visible := time.Since(loadStart)
	slices.Sort(lat)
	b.ReportMetric(float64(sent.Load())/acked.Seconds(), "acked-events/s")
	b.ReportMetric(float64(sent.Load())/visible.Seconds(), "stored-events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ack-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ack-ms")
	b.ReportMetric(float64(rssKiB(d.cmd.Process.Pid))/1024, "rss-MiB")
	logMemory(b, d.cmd.Process.Pid, "http://"+pprofAddr)

	var searches []time.Duration
	for i := 0; i < 40; i++ {
		q := url.Values{"q": {"actor:user:u" + strconv.Itoa(i%50)}, "limit": {"50"}}
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.qy+"/v1/events?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+d.tokens["AUDITOR_TOKEN"])
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("search: %v %v", err, resp)
		}
		resp.Body.Close()
		searches = append(searches, time.Since(t0))
	}
	slices.Sort(searches)
	b.ReportMetric(float64(searches[len(searches)*95/100].Milliseconds()), "search-p95-ms")
	b.ReportMetric(float64(sent.Load()), "events")
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

// logMemory logs where the process's memory is: its anonymous and file-backed RSS
// (the ClickHouse engine's library is most of the latter) and the top of the Go
// heap's in-use profile; what the Go heap does not explain is the engine's.
func logMemory(b *testing.B, pid int, pprofURL string) {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "VmHWM") {
			b.Log(l)
		}
	}
	resp, err := http.Get(pprofURL + "/debug/pprof/heap")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	prof := filepath.Join(os.TempDir(), "trailkeep-dev-heap.pprof")
	f, err := os.Create(prof)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=15", "-sample_index=inuse_space", prof).CombinedOutput()
	if err != nil {
		b.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	b.Logf("Go heap in use (profile %s):\n%s", prof, out)
}
