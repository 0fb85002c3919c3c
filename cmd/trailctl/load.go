package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// The load generator behind the ingest figures in BENCHMARKS.md. It posts generated
// canonical events (or Claude Code hook payloads) and reports sustained throughput and
// the latency of acknowledged requests, which for ingest includes the Kafka ack.
func newLoadCmd() *cobra.Command {
	var (
		baseURL, token, mode string
		batch, conc          int
		rate                 float64
		dur, warmup          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Generate load against ingest and report events/s and ack latency percentiles",
		Long: `Posts generated events to ingest for --duration after a --warmup and prints sustained
events/s, requests/s, latency percentiles of 2xx answers, the status-code mix, and the
ingest process's resident memory read from its /metrics.

Modes: single (one canonical event per POST /v1/events), batch (--batch events as NDJSON
per request), hooks (one Claude Code PreToolUse payload per POST /v1/hooks/claude-code),
otlp (--batch Claude Code telemetry records per OTLP/HTTP protobuf export to /v1/logs).
--rate caps requests per second (0: as fast as --concurrency allows).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if baseURL == "" || token == "" {
				return usageError(fmt.Errorf("--url and --token are required"))
			}
			if mode != "single" && mode != "batch" && mode != "hooks" && mode != "otlp" {
				return usageError(fmt.Errorf("--mode must be single, batch, hooks or otlp"))
			}
			if mode != "batch" && mode != "otlp" {
				batch = 1
			}
			r := &loadRun{url: strings.TrimRight(baseURL, "/"), token: token, mode: mode, batch: batch}
			res := r.run(conc, rate, warmup, dur)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "mode=%s batch=%d concurrency=%d rate=%s duration=%s\n", mode, batch, conc, rateLabel(rate), dur)
			fmt.Fprintf(out, "requests: %d (%.0f/s)  events acknowledged: %d (%.0f/s)\n", res.requests, float64(res.requests)/dur.Seconds(), res.events, float64(res.events)/dur.Seconds())
			fmt.Fprintf(out, "latency of 2xx: p50 %s  p90 %s  p99 %s  max %s\n", res.pct(0.50), res.pct(0.90), res.pct(0.99), res.pct(1))
			fmt.Fprintf(out, "status codes: %s\n", res.codes())
			if rss, err := scrapeRSS(r.url); err == nil {
				fmt.Fprintf(out, "ingest RSS: %.1f MiB\n", rss/(1<<20))
			} else {
				fmt.Fprintf(out, "ingest RSS: unknown (%v)\n", err)
			}
			if res.events == 0 {
				return failed("no event was acknowledged")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&baseURL, "url", "http://127.0.0.1:8080", "ingest base URL")
	f.StringVar(&token, "token", "", "bearer token (events:write, or hooks:write for --mode hooks)")
	f.StringVar(&mode, "mode", "batch", "single, batch, hooks or otlp")
	f.IntVar(&batch, "batch", 500, "events per request in batch mode")
	f.IntVar(&conc, "concurrency", 16, "concurrent connections")
	f.Float64Var(&rate, "rate", 0, "requests per second (0: unlimited)")
	f.DurationVar(&dur, "duration", 20*time.Second, "measured duration")
	f.DurationVar(&warmup, "warmup", 3*time.Second, "unmeasured warm-up")
	return cmd
}

func rateLabel(r float64) string {
	if r <= 0 {
		return "max"
	}
	return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
}

type loadRun struct {
	url, token, mode string
	batch            int
	seq              atomic.Int64
}

type loadResult struct {
	requests, events int64
	lat              []time.Duration
	status           map[int]int64
}

func (r *loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p * float64(len(r.lat)-1))
	return r.lat[i].Round(10 * time.Microsecond)
}

func (r *loadResult) codes() string {
	var keys []int
	for k := range r.status {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "transport-error"
		}
		parts = append(parts, fmt.Sprintf("%s=%d", name, r.status[k]))
	}
	return strings.Join(parts, " ")
}

var (
	loadActions = []string{"skill.updated", "skill.created", "team.member_added", "auth.sso_login", "tool.executed", "rule.updated"}
)

// body builds one request body; events are varied so the encoder and Kafka compression
// see realistic input (~450 bytes per canonical event).
func (l *loadRun) body(rng *rand.Rand) []byte {
	if l.mode == "otlp" {
		return l.otlpBody(rng)
	}
	var b bytes.Buffer
	for i := 0; i < l.batch; i++ {
		n := l.seq.Add(1)
		if l.mode == "hooks" {
			fmt.Fprintf(&b, `{"session_id":"sess-%d","transcript_path":"/home/dev/.claude/projects/p/sess.jsonl","cwd":"/home/dev/payments-api","hook_event_name":"PreToolUse","prompt_id":"prompt-%d","permission_mode":"default","tool_name":"Bash","tool_input":{"command":"npm test -- refunds --run %d"},"tool_use_id":"toolu_%d"}`,
				n/50, n/5, n, n)
			continue
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, `{"action":%q,"occurred_at":%q,"actor":{"type":"user","id":"usr_%d","email":"user%d@acme.example"},"resource":{"type":"skill","id":"skl_%d","name":"api-conventions-%d"},"change":{"from_version":"1.%d.0","to_version":"1.%d.0","diff_summary":"Adjusted rate limiting instructions for payments endpoints"},"result":{"status":"success"},"metadata":{"request_id":"req-%d","team":"payments"}}`,
			loadActions[rng.IntN(len(loadActions))], time.Now().UTC().Format(time.RFC3339Nano), rng.IntN(500), rng.IntN(500), rng.IntN(2000), n%97, n%40, n%40+1, n)
	}
	return b.Bytes()
}

func (l *loadRun) run(conc int, rate float64, warmup, dur time.Duration) *loadResult {
	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	path, ctype := "/v1/events", "application/json"
	switch l.mode {
	case "batch":
		ctype = "application/x-ndjson"
	case "hooks":
		path = "/v1/hooks/claude-code"
	case "otlp":
		path, ctype = "/v1/logs", "application/x-protobuf"
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup+dur)
	defer cancel()
	// Open-loop pacing: request i is due at start + i/rate. A time.Ticker would drop
	// ticks whenever the timer resolution is coarser than the interval, silently
	// under-delivering the requested rate.
	var tick chan struct{}
	if rate > 0 {
		tick = make(chan struct{})
		go func() {
			start := time.Now()
			for i := 0; ; i++ {
				if d := time.Until(start.Add(time.Duration(float64(i) * float64(time.Second) / rate))); d > 0 {
					time.Sleep(d)
				}
				select {
				case tick <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	measureFrom := time.Now().Add(warmup)
	var mu sync.Mutex
	res := &loadResult{status: map[int]int64{}}
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed*7919))
			for ctx.Err() == nil {
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
				body := l.body(rng)
				req, _ := http.NewRequestWithContext(ctx, "POST", l.url+path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+l.token)
				req.Header.Set("Content-Type", ctype)
				t0 := time.Now()
				resp, err := client.Do(req)
				code, backoff := 0, time.Duration(0)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
					// A sender told to come back later waits, as a well-behaved client
					// does; hammering 503s would measure the load generator instead.
					if n, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && code == http.StatusServiceUnavailable {
						backoff = time.Duration(n) * time.Second
					}
				} else if ctx.Err() != nil {
					return // the run ended mid-request; not a failure of ingest
				}
				el := time.Since(t0)
				if backoff > 0 {
					select {
					case <-time.After(backoff):
					case <-ctx.Done():
					}
				}
				if t0.Before(measureFrom) {
					continue
				}
				mu.Lock()
				res.requests++
				res.status[code]++
				if code >= 200 && code < 300 {
					res.events += int64(l.batch)
					res.lat = append(res.lat, el)
				}
				mu.Unlock()
			}
		}(uint64(w + 1))
	}
	wg.Wait()
	slices.Sort(res.lat)
	return res
}

// scrapeRSS reads process_resident_memory_bytes from ingest's /metrics.
func scrapeRSS(base string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no process_resident_memory_bytes in /metrics")
}

// otlpBody is one OTLP/HTTP protobuf export of l.batch Claude Code records, as its
// exporter batches them: tool decisions, tool results and API requests of a session.
func (l *loadRun) otlpBody(rng *rand.Rand) []byte {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "claude-code")
	rl.Resource().Attributes().PutStr("service.version", "2.1.274")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("com.anthropic.claude_code.events")
	names := []string{"tool_decision", "tool_result", "api_request"}
	for i := 0; i < l.batch; i++ {
		n := l.seq.Add(1)
		name := names[rng.IntN(len(names))]
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Body().SetStr("claude_code." + name)
		a := lr.Attributes()
		a.PutStr("event.name", name)
		a.PutStr("session.id", fmt.Sprintf("sess-%d", n/100))
		a.PutInt("event.sequence", n)
		a.PutStr("user.email", fmt.Sprintf("user%d@acme.example", rng.IntN(50)))
		a.PutStr("organization.id", "org_1")
		a.PutStr("prompt.id", fmt.Sprintf("prompt-%d", n/10))
		a.PutStr("tool_name", "Bash")
		a.PutStr("tool_use_id", fmt.Sprintf("toolu_%d", n))
		switch name {
		case "tool_decision":
			a.PutStr("decision", "accept")
			a.PutStr("source", "config")
		case "tool_result":
			a.PutStr("success", "true")
			a.PutStr("duration_ms", strconv.Itoa(rng.IntN(5000)))
		default:
			a.PutStr("model", "claude-sonnet-4")
			a.PutStr("cost_usd", "0.0123")
			a.PutStr("input_tokens", strconv.Itoa(rng.IntN(20000)))
		}
	}
	b, _ := plogotlp.NewExportRequestFromLogs(logs).MarshalProto()
	return b
}
