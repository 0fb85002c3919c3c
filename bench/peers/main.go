// Command peers is the side-by-side benchmark of issue 20: the same HTTP load
// generator against Tessera's POSIX log (run in this process, configured as
// Tessera's own conformance server) and against a running trailkeep ingest, on the
// same machine, so an evaluator's comparison can be re-run. It lives in its own
// module so the product's go.mod does not carry Tessera.
//
//	peers -system tessera   -conns 256 -duration 30s -warmup 5s
//	peers -system trailkeep -url http://127.0.0.1:8080 -token $REGISTRY_TOKEN -conns 256
//	peers -system trailkeep ... -batch 500 -conns 8      (NDJSON batches)
//
// It prints one JSON line: entries acknowledged per second, the latency of an
// acknowledgement (p50, p99) and what an acknowledgement means for that system.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

func main() { os.Exit(peers()) }

// peers is main, returning the exit status so that deferred clean-up (Tessera's
// directory) runs before the process exits.
func peers() int {
	system := flag.String("system", "", "tessera or trailkeep")
	url := flag.String("url", "", "trailkeep: ingest's base URL")
	token := flag.String("token", os.Getenv("TRAILKEEP_BENCH_TOKEN"), "trailkeep: an ingest token with events:write")
	conns := flag.Int("conns", 256, "concurrent connections, each sending one request at a time")
	batch := flag.Int("batch", 1, "trailkeep: events per request (NDJSON when above 1)")
	duration := flag.Duration("duration", 30*time.Second, "measured time")
	warmup := flag.Duration("warmup", 5*time.Second, "load before the measured time, not counted")
	entry := flag.Int("entry", 1024, "tessera: entry size in bytes")
	flag.Parse()

	var target func(ctx context.Context, c *http.Client) (int, error)
	var meaning string
	switch *system {
	case "tessera":
		addr, stop, err := startTessera()
		if err != nil {
			log.Fatalf("peers: tessera: %v", err)
		}
		defer stop()
		target = tesseraAdd("http://"+addr+"/add", *entry)
		meaning = "the entry's batch, its tiles and the tree state are fsynced in the POSIX directory (index assigned); published in a checkpoint within the 1 s interval"
	case "trailkeep":
		if *url == "" || *token == "" {
			log.Fatal("peers: -system trailkeep needs -url and -token")
		}
		target = trailkeepPost(*url+"/v1/events", *token, *batch)
		meaning = "the event is validated, redacted, made canonical and acknowledged by ingest's Kafka broker (trailkeep dev: the embedded broker, fsynced per batch; the stack: acks=all); chained, signed and stored afterwards"
	default:
		log.Fatal("peers: -system must be tessera or trailkeep")
	}
	res := run(target, *conns, *warmup, *duration)
	res.System, res.Conns, res.Batch, res.Meaning = *system, *conns, *batch, meaning
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Failures > 0 {
		// A rate with failed requests in it is not a result: say so in the
		// exit status too, not only in the JSON line.
		fmt.Fprintf(os.Stderr, "peers: %d requests failed; the rate above does not count them and is not comparable\n", res.Failures)
		return 1
	}
	return 0
}

// result is one run's figures.
type result struct {
	System   string  `json:"system"`
	Conns    int     `json:"conns"`
	Batch    int     `json:"batch"`
	PerSec   float64 `json:"entries_per_s"`
	P50ms    float64 `json:"ack_p50_ms"`
	P99ms    float64 `json:"ack_p99_ms"`
	Failures int64   `json:"failures"`
	Meaning  string  `json:"ack_means"`
}

// run keeps conns requests in flight for warmup+duration and counts the entries
// acknowledged (2xx) during duration.
func run(target func(context.Context, *http.Client) (int, error), conns int, warmup, duration time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), warmup+duration)
	defer cancel()
	start := time.Now().Add(warmup)
	var entries, failures atomic.Int64
	lats := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				n, err := target(ctx, client)
				if ctx.Err() != nil {
					return
				}
				if t0.Before(start) {
					continue
				}
				if err != nil {
					failures.Add(1)
					continue
				}
				entries.Add(int64(n))
				lats[i] = append(lats[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	all := slices.Concat(lats...)
	slices.Sort(all)
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	return result{PerSec: float64(entries.Load()) / duration.Seconds(), P50ms: q(0.5), P99ms: q(0.99), Failures: failures.Load()}
}

// startTessera runs a POSIX log in a temporary directory behind POST /add, with the
// options of Tessera's conformance server (batches of 256 or 1 s, checkpoint every
// second, in-memory antispam).
func startTessera() (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "peers-tessera-")
	if err != nil {
		return "", nil, err
	}
	skey, _, err := note.GenerateKey(rand.Reader, "peers.example/tessera")
	if err != nil {
		return "", nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", nil, err
	}
	ctx := context.Background()
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return "", nil, err
	}
	appender, shutdown, _, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).WithCheckpointInterval(time.Second).WithCheckpointRepublishInterval(time.Minute).
		WithBatching(256, time.Second).WithAntispam(tessera.DefaultAntispamInMemorySize, nil))
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		idx, err := appender.Add(r.Context(), tessera.NewEntry(b))()
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d", idx.Index)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() {
		srv.Close()
		_ = shutdown(ctx)
		os.RemoveAll(dir)
	}, nil
}

// tesseraAdd posts one random entry of size bytes (random, so the antispam layer
// does not deduplicate them).
func tesseraAdd(url string, size int) func(context.Context, *http.Client) (int, error) {
	return func(ctx context.Context, c *http.Client) (int, error) {
		b := make([]byte, size)
		rand.Read(b)
		return post(ctx, c, url, "application/octet-stream", "", b, 1)
	}
}

var seq atomic.Int64

// trailkeepPost posts batch generated events (~450 bytes canonical, one tenant).
func trailkeepPost(url, token string, batch int) func(context.Context, *http.Client) (int, error) {
	ctype := "application/json"
	if batch > 1 {
		ctype = "application/x-ndjson"
	}
	return func(ctx context.Context, c *http.Client) (int, error) {
		var body bytes.Buffer
		for range batch {
			i := seq.Add(1)
			fmt.Fprintf(&body, `{"action":"skill.updated","actor":{"type":"user","id":"usr_%d"},"resource":{"type":"skill","id":"skl_%d"},"metadata":{"team":"payments","note":"Adjusted rate limiting instructions for payments endpoints, request %d"}}`+"\n", i%500, i%2000, i)
		}
		return post(ctx, c, url, ctype, token, body.Bytes(), batch)
	}
}

func post(ctx context.Context, c *http.Client, url, ctype, token string, body []byte, n int) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return 0, errors.New(resp.Status)
	}
	return n, nil
}
