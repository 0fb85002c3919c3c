package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/trailkeep/trailkeep/internal/browsertest"
	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/console"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
)

// xssCorpus: values an agent or sender could put in an event, each trying to run
// script or change the page if a view ever wrote it as HTML or used it as a URL.
var xssCorpus = []string{
	`<script>window.__pwned="script"</script>`,
	`<img src=x onerror="window.__pwned='img'">`,
	`<svg onload="window.__pwned='svg'"><circle r="9"/></svg>`,
	`javascript:window.__pwned='url'`,
	`"><iframe srcdoc="<script>parent.__pwned='iframe'</script>"></iframe>`,
	`</pre><b id="injected">bold</b><pre>`,
	`<a href="javascript:window.__pwned='link'">click</a>`,
	`{{constructor.constructor('window.__pwned=1')()}}`,
}

// accessLog records the access events the API publishes.
type accessLog struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (a *accessLog) Publish(_ context.Context, msgs []kafka.Message) []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range msgs {
		a.msgs = append(a.msgs, m.Value)
	}
	return make([]error, len(msgs))
}

// expect fails t unless an access event names each of the console views.
func (a *accessLog) expect(t *testing.T, views ...string) {
	t.Helper()
	seen := a.views()
	for _, v := range views {
		if seen[v] == 0 {
			t.Errorf("no access event names the console view %q (seen: %v)", v, seen)
		}
	}
}

// views returns the console_view of every access event so far.
func (a *accessLog) views() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, b := range a.msgs {
		var ev struct {
			Metadata map[string]any `json:"metadata"`
		}
		if json.Unmarshal(b, &ev) == nil {
			if v, ok := ev.Metadata["console_view"].(string); ok {
				out[v]++
			}
		}
	}
	return out
}

type consoleStack struct {
	url    string
	token  string
	key    string
	log    *chaintest.Log
	xss    []chain.Record
	access *accessLog
	// tamper, when set, rewrites proof responses (see serveProofs).
	tamper atomic.Pointer[func(path string, body []byte) []byte]
}

func newConsoleStack(t *testing.T) *consoleStack {
	store := chtest.Store(t)
	log := chaintest.New(t, "console.example", 5)
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond)
	s := &consoleStack{log: log, access: &accessLog{}}
	for i := range 30 {
		doc := chaintest.Doc([]string{"skill.updated", "tool.executed", "team.member_added"}[i%3], fmt.Sprintf("user%d@acme.example", i%4), "skill", fmt.Sprintf("skill-%d", i%5))
		log.Add(0, "acme", base.Add(time.Duration(i)*time.Minute), doc)
	}
	for i, payload := range xssCorpus {
		doc := chaintest.Doc("skill.updated", payload, "skill", payload)
		doc["resource"].(map[string]any)["name"] = payload
		doc["metadata"] = map[string]any{"note": payload}
		s.xss = append(s.xss, log.Add(0, "acme", base.Add(time.Duration(40+i)*time.Minute), doc))
	}
	// A rule's versions (the third change denied) and one tool call whose executed
	// parameters differ from the approved ones.
	for i, to := range []string{"1", "2", "3"} {
		doc := chaintest.Doc("rule.updated", "sarah@acme.example", "rule", "no-secrets")
		doc["change"] = map[string]any{"to_version": to, "diff_summary": "rule v" + to}
		if i == 2 {
			doc["result"] = map[string]any{"status": "denied"}
		} else {
			doc["approval"] = map[string]any{"decision": "approved", "decided_by": "lead@acme.example"}
		}
		log.Add(0, "acme", base.Add(time.Duration(60+i)*time.Minute), doc)
	}
	digest := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	for i, step := range []struct {
		action   string
		approval map[string]any
	}{
		{"tool.requested", map[string]any{"approved_params_digest": digest("a")}},
		{"tool.decided", map[string]any{"decision": "approved", "decided_by": "lead@acme.example"}},
		{"tool.result", map[string]any{"executed_params_digest": digest("b")}},
	} {
		doc := chaintest.Doc(step.action, "agent-7", "tool", "Bash")
		doc["session"] = map[string]any{"id": "sess-1", "tool_use_id": "toolu_01"}
		doc["approval"] = step.approval
		log.Add(0, "acme", base.Add(time.Duration(70+i)*time.Minute), doc)
	}
	for i := range 6 { // another tenant's events, which the token must never show
		log.Add(1, "globex", base.Add(time.Duration(i)*time.Minute), chaintest.Doc("skill.updated", "ops@globex.example", "skill", "globex-secret"))
	}
	log.Sign(0)
	log.Sign(1)
	ctx := context.Background()
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertCheckpoints(ctx, log.Checkpoints); err != nil {
		t.Fatal(err)
	}
	s.token = "tk_console_reader"
	tokens, err := queryapi.ParseTokens([]byte(fmt.Sprintf(`{"tokens":[{"name":"auditor","sha256":"%x","role":"auditor","tenants":["acme"],"actor":{"type":"user","id":"auditor@acme.example"}}]}`, sha(s.token))))
	if err != nil {
		t.Fatal(err)
	}
	api, err := queryapi.New(queryapi.Options{Store: store, Tokens: tokens, Publisher: s.access})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.serveProofs(api.Handler()))
	mux.Handle(console.Prefix, console.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		api.Close()
	})
	s.url, s.key = srv.URL, log.VerifierKey
	return s
}

// serveProofs passes proof responses through the tamper function, if one is set:
// the browser must notice whatever the server changes.
func (s *consoleStack) serveProofs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := s.tamper.Load()
		if f == nil || !strings.HasSuffix(r.URL.Path, "/proof") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write((*f)(r.URL.Path, rec.Body.Bytes()))
	})
}

func (s *consoleStack) setTamper(f func(path string, body []byte) []byte) {
	if f == nil {
		s.tamper.Store(nil)
		return
	}
	s.tamper.Store(&f)
}

// signIn signs in with the keyboard only: type the token, Tab to the key, Enter.
func (s *consoleStack) signIn(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.url+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("signin-token")),
		chromedp.SendKeys(chromedp.ID("signin-token"), s.token),
		chromedp.KeyEvent("\t"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if focused, _ := browsertest.Eval[string](ctx, `document.activeElement.id`); focused != "signin-key" {
		t.Fatalf("Tab from the token field focused %q, want the key field", focused)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent(key), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `!document.getElementById('view-search').hidden`, `document.getElementById('signin-error').textContent`); err != nil {
		t.Fatal(err)
	}
}

func (s *consoleStack) search(t *testing.T, ctx context.Context, q string) int {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/ui/#/search"), chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SetValue(chromedp.ID("q"), q), chromedp.SetValue(chromedp.ID("limit"), "500"), chromedp.Click(chromedp.CSS("#search-form button")))
	if err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `document.getElementById('search-status').textContent.match(/events|No events/)`, `document.getElementById('search-error').textContent`); err != nil {
		t.Fatal(err)
	}
	n, err := browsertest.Eval[int](ctx, `document.querySelectorAll('#results-body tr').length`)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// openEvent shows the event view of id and waits for the proof badge to settle.
func (s *consoleStack) openEvent(t *testing.T, ctx context.Context, id string) (class, text string) {
	t.Helper()
	// A fresh page each time: a hash change alone would keep the previous
	// badge on screen until the new check starts.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(s.url+"/ui/#/event/"+id)); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `['ok','bad','warn'].some((c) => document.getElementById('badge').classList.contains(c)) || document.getElementById('event-error').textContent`, `document.getElementById('badge').textContent`); err != nil {
		t.Fatal(err)
	}
	class, _ = browsertest.Eval[string](ctx, `document.getElementById('badge').className + (document.getElementById('event-error').textContent ? ' error' : '')`)
	text, _ = browsertest.Eval[string](ctx, `document.getElementById('badge').textContent + document.getElementById('event-error').textContent`)
	return class, text
}

func TestConsoleSearchOpenAndVerify(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	s.signIn(t, ctx, s.key)

	if n := s.search(t, ctx, "event:skill.*"); n != 10+len(xssCorpus) {
		t.Errorf("event:skill.* shows %d rows, want %d (acme's skill events only)", n, 10+len(xssCorpus))
	}
	if n := s.search(t, ctx, "resource:globex-secret"); n != 0 {
		t.Errorf("another tenant's events are shown: %d rows", n)
	}
	n := s.search(t, ctx, "event:tool.executed")
	if n != 10 {
		t.Errorf("event:tool.executed shows %d rows, want 10", n)
	}
	if err := browsertest.WaitFor(ctx, `!document.getElementById('histogram').hidden`, `document.getElementById('histogram-caption').textContent`); err != nil {
		t.Fatal(err)
	}
	hist, _ := browsertest.Eval[map[string]any](ctx, `({caption: document.getElementById('histogram-caption').textContent,
	  bars: document.querySelectorAll('#histogram-svg rect').length,
	  sum: Array.from(document.querySelectorAll('#histogram-svg rect title')).reduce((a, t) => a + Number(t.textContent.split(': ').pop()), 0)})`)
	if !strings.HasPrefix(hist["caption"].(string), "10 matching events from ") || hist["bars"] != float64(60) || hist["sum"] != float64(10) {
		t.Errorf("histogram of event:tool.executed over the last 7 days: %v, want 60 bars holding 10 events", hist)
	}
	screenshot(t, ctx, "console-search.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#results-body tr:first-child a"))); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `['ok','bad','warn'].some((c) => document.getElementById('badge').classList.contains(c))`, `document.getElementById('badge').textContent`); err != nil {
		t.Fatal(err)
	}
	text, _ := browsertest.Eval[string](ctx, `document.getElementById('badge').className + ' | ' + document.getElementById('badge').textContent`)
	vk := strings.Join(strings.SplitN(s.key, "+", 3)[:2], "+")
	if !strings.HasPrefix(text, "badge ok | Verified in your browser against key "+vk) {
		t.Errorf("badge: %q, want verified against %s", text, vk)
	}
	screenshot(t, ctx, "console-event.png")

	s.access.expect(t, "signin", "search", "search-histogram", "event", "event-proof")
}

// Whatever the server alters in a proof, or whichever key the reader pinned, the
// badge must not say verified, and must say which step failed.
func TestConsoleRefusesTamperedProofs(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	s.signIn(t, ctx, s.key)
	target := s.log.Records[17] // partition 0, inside a multi-level tree
	other := s.log.Records[3]
	var otherProof []byte
	s.setTamper(func(path string, body []byte) []byte {
		if strings.Contains(path, eventID(t, other)) {
			otherProof = body
		}
		return body
	})
	if class, text := s.openEvent(t, ctx, eventID(t, other)); class != "badge ok" {
		t.Fatalf("untampered proof: %s %q", class, text)
	}
	_, wrongKey, err := chain.GenerateKey("console.example")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tamper func(body []byte) []byte
		key    string
		want   string
	}{
		{"path hash", func(b []byte) []byte { return replaceNth(b, `"inclusion":["`, 1) }, "", `step "inclusion"`},
		{"event byte", func(b []byte) []byte { return bytes.Replace(b, []byte("acme.example"), []byte("acme.exampl3"), 1) }, "", `step "record"`},
		{"another record's proof", func([]byte) []byte { return otherProof }, "", `step "record"`},
		{"checkpoint size", func(b []byte) []byte { return bytes.Replace(b, []byte(`/0\n`), []byte(`/0\n9`), 1) }, "", `step "signature"`},
		{"wrong pinned key", func(b []byte) []byte { return b }, wrongKey, `step "signature"`},
		{"not a proof", func([]byte) []byte { return []byte(`<html>proxy error</html>`) }, "", `step "format"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := s.key
			if c.key != "" {
				key = c.key
			}
			if _, err := browsertest.Eval[chromedp.Void](ctx, fmt.Sprintf(`localStorage.setItem('trailkeep.verifierKey', %q)`, key)); err != nil {
				t.Fatal(err)
			}
			s.setTamper(func(_ string, b []byte) []byte { return c.tamper(b) })
			class, text := s.openEvent(t, ctx, eventID(t, target))
			if class != "badge bad" || !strings.Contains(text, c.want) {
				t.Errorf("badge %s %q, want bad naming %s", class, text, c.want)
			}
		})
	}
}

// replaceNth changes the hex digit right after the first occurrence of marker.
func replaceNth(b []byte, marker string, _ int) []byte {
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return b
	}
	out := bytes.Clone(b)
	j := i + len(marker)
	if out[j] == '0' {
		out[j] = '1'
	} else {
		out[j] = '0'
	}
	return out
}

// Event fields carrying HTML, script, javascript: URLs and SVG are shown as text in
// the result table and the event view; none runs or adds an element.
func TestConsoleShowsHostileFieldsAsText(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	s.signIn(t, ctx, s.key)
	check := func(where string) {
		t.Helper()
		res, err := browsertest.Eval[map[string]any](ctx, `({
		  pwned: window.__pwned || '',
		  injected: document.querySelectorAll('main img, main svg:not(#histogram-svg), main iframe, main script, main object, main embed, #injected').length,
		  jsLinks: Array.from(document.querySelectorAll('a')).filter((a) => !a.getAttribute('href').startsWith('#')).length,
		  title: document.title,
		})`)
		if err != nil {
			t.Fatal(err)
		}
		if res["pwned"] != "" || res["injected"] != float64(0) || res["jsLinks"] != float64(0) || !strings.HasSuffix(res["title"].(string), "trailkeep console") {
			t.Errorf("%s: hostile content took effect: %v", where, res)
		}
	}
	if n := s.search(t, ctx, "event:skill.*"); n == 0 {
		t.Fatal("no rows")
	}
	text, _ := browsertest.Eval[string](ctx, `document.getElementById('results-body').textContent`)
	for _, p := range xssCorpus {
		if !strings.Contains(text, p) {
			t.Errorf("result table does not show %q as text", p)
		}
	}
	check("result table")
	for i, rec := range s.xss {
		class, _ := s.openEvent(t, ctx, eventID(t, rec))
		if class != "badge ok" {
			t.Errorf("event with payload %d: badge %s", i, class)
		}
		shown, _ := browsertest.Eval[string](ctx, `document.getElementById('event-json').textContent`)
		if shown != string(rec.Event) {
			t.Errorf("event view shows %q, want the canonical bytes %q", shown, rec.Event)
		}
		check(fmt.Sprintf("event view of payload %d", i))
	}
}

// screenshot saves the page as name under $TRAILKEEP_SCREENSHOTS (the README's
// images: make screenshots), else in the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("TRAILKEEP_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// eventID is the id inside a record's canonical event.
func eventID(t *testing.T, rec chain.Record) string {
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rec.Event, &ev); err != nil || ev.ID == "" {
		t.Fatalf("record %d/%d: no event id (%v)", rec.Partition, rec.Seq, err)
	}
	return ev.ID
}

// Every view passes axe-core's WCAG 2.1 A/AA rules with no serious or critical
// violation, in the states a reader sees: signed out, results shown, an event
// with its badge, log health, settings.
func TestConsoleAccessibility(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	audit := func(view string) {
		t.Helper()
		for _, v := range browsertest.Axe(t, ctx) {
			t.Errorf("%s: %s", view, v)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("signin-token"))); err != nil {
		t.Fatal(err)
	}
	audit("sign-in")
	s.signIn(t, ctx, s.key)
	if s.search(t, ctx, "event:skill.*") == 0 {
		t.Fatal("no rows to audit")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#saved summary"))); err != nil {
		t.Fatal(err)
	}
	audit("search results, saved queries open")
	if class, text := s.openEvent(t, ctx, eventID(t, s.log.Records[0])); class != "badge ok" {
		t.Fatalf("event view: %s %q", class, text)
	}
	audit("event")
	for _, view := range []string{"timeline", "approvals", "drift", "export", "health", "settings"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/ui/#/"+view), chromedp.WaitVisible(chromedp.ID("view-"+view))); err != nil {
			t.Fatal(err)
		}
		audit(view)
	}
}

// The report views answer the incident questions from the API's reports: which
// version of a rule was in force, who approved a tool call, and what ran that
// nobody approved.
func TestConsoleReports(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	s.signIn(t, ctx, s.key)
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond).Add(61*time.Minute + 30*time.Second).Format(time.RFC3339)
	cases := []struct {
		name, hash, ready string
		want              []string
	}{
		{"timeline", "#/timeline/resource=rule%3Ano-secrets&at=" + at, `document.querySelectorAll('#timeline-body tr').length === 3`,
			[]string{"In force at", "version 2", "approved by lead@acme.example", "rule v3", "denied"}},
		{"in force now: the denied change did not take effect", "#/timeline/resource=rule%3Ano-secrets&at=now", `document.getElementById('timeline-inforce').textContent`,
			[]string{"version 2,"}},
		{"approvals", "#/approvals", `document.querySelectorAll('#approvals-body tr').length === 1`,
			[]string{"Bash", "lead@acme.example", "approved"}},
		{"drift", "#/drift", `document.querySelectorAll('#drift-body tr').length === 1`,
			[]string{"agent-7", "sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("b", 64)}},
		{"health", "#/health", `document.querySelectorAll('#health-body tr').length === 1`,
			[]string{"verified in your browser", ": anchored", " s ago)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(s.url+"/ui/"+c.hash)); err != nil {
				t.Fatal(err)
			}
			if err := browsertest.WaitFor(ctx, c.ready, `document.querySelector('main > section:not([hidden])').innerText`); err != nil {
				t.Fatal(err)
			}
			text, _ := browsertest.Eval[string](ctx, `document.querySelector('main > section:not([hidden])').innerText`)
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("the %s view lacks %q:\n%s", c.name, w, text)
				}
			}
		})
	}
	s.access.expect(t, "timeline", "approvals", "drift", "health")
}

// Saved queries: save the current filter, see it listed, run it, delete it.
func TestConsoleSavedQueries(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	s.signIn(t, ctx, s.key)
	if n := s.search(t, ctx, "event:rule.*"); n != 3 {
		t.Fatalf("event:rule.* shows %d rows, want 3", n)
	}
	err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#saved summary")), chromedp.WaitVisible(chromedp.ID("save-name")),
		chromedp.SendKeys(chromedp.ID("save-name"), "rule-changes"), chromedp.SendKeys(chromedp.ID("save-description"), "every rule change <b>"),
		chromedp.Click(chromedp.CSS("#save-form button")))
	if err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `document.getElementById('saved-status').textContent === 'Saved rule-changes.'`, `document.getElementById('saved-status').textContent`); err != nil {
		t.Fatal(err)
	}
	row, _ := browsertest.Eval[string](ctx, `document.querySelector('#saved-list-body tr').innerText`)
	for _, w := range []string{"rule-changes", "acme", "event:rule.*", "every rule change <b>", "user:auditor@acme.example"} {
		if !strings.Contains(row, w) {
			t.Errorf("saved query row %q lacks %q", row, w)
		}
	}
	// Run it from a fresh page: the list is read back from the store.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(s.url+"/ui/#/search"), chromedp.Click(chromedp.CSS("#saved summary"))); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `document.querySelector('#saved-list-body tr button')`, `document.getElementById('saved-status').textContent`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#saved-list-body button[aria-label="Run rule-changes"]`))); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `document.querySelectorAll('#results-body tr').length === 3`, `document.getElementById('search-status').textContent`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#saved-list-body button[aria-label="Delete rule-changes"]`))); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `document.getElementById('saved-status').textContent === 'Deleted rule-changes.' && document.getElementById('saved-list').hidden`, `document.getElementById('saved-status').textContent`); err != nil {
		t.Fatal(err)
	}
	if views := s.access.views(); views["saved-queries"] < 3 {
		t.Errorf("saved-query calls in the access log: %d, want list, save and delete", views["saved-queries"])
	}
}

// An export made in the browser verifies with the Go code: the manifest's
// signature with the exporter's key, the file against its size and hash, and each
// partition's checkpoint with the log's key covering what was exported.
func TestConsoleExportVerifiesWithGo(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	s.signIn(t, ctx, s.key)
	skey, vkey, err := chain.GenerateKey("auditor-export")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "exporter.key")
	damaged := filepath.Join(t.TempDir(), "damaged.key")
	if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The hash names another key: a damaged file must be refused, not used.
	bad := strings.Split(skey, "+")
	bad[3] = "00000000"
	if err := os.WriteFile(damaged, []byte(strings.Join(bad, "+")), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(key string) string {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(s.url+"/ui/#/export"), chromedp.WaitVisible(chromedp.ID("export-q")),
			chromedp.SetValue(chromedp.ID("export-q"), "event:skill.* OR event:rule.*"), chromedp.SetUploadFiles(chromedp.ID("export-key"), []string{key}),
			chromedp.Click(chromedp.CSS("#export-form button")))
		if err != nil {
			t.Fatal(err)
		}
		if err := browsertest.WaitFor(ctx, `document.getElementById('export-status').textContent.startsWith('Exported') || document.getElementById('export-error').textContent`,
			`document.getElementById('export-error').textContent`); err != nil {
			t.Fatal(err)
		}
		out, _ := browsertest.Eval[string](ctx, `document.getElementById('export-error').textContent || document.getElementById('export-status').textContent`)
		return out
	}
	if msg := run(damaged); !strings.Contains(msg, "does not match its key") {
		t.Errorf("a damaged key file: %q, want it refused", msg)
	}
	if msg := run(keyFile); !strings.HasPrefix(msg, "Exported 21 events") {
		t.Fatalf("export: %q, want 21 events (acme's 10 skill changes, 8 hostile skill events and 3 rule changes)", msg)
	}
	var file, manifest string
	deadline := time.Now().Add(30 * time.Second)
	for (file == "" || manifest == "") && time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			switch {
			case strings.HasSuffix(e.Name(), ".ndjson"):
				file = filepath.Join(dir, e.Name())
			case strings.HasSuffix(e.Name(), ".ndjson.manifest"):
				manifest = filepath.Join(dir, e.Name())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if file == "" || manifest == "" {
		t.Fatalf("downloads in %s: file %q, manifest %q", dir, file, manifest)
	}
	signed, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	exporter, err := chain.NewVerifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := export.Open(signed, exporter)
	if err != nil {
		t.Fatalf("the manifest does not verify with the exporter's key: %v\n%s", err, signed)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.CheckFile(f); err != nil {
		t.Error(err)
	}
	logKey, err := chain.NewVerifiers(s.key)
	if err != nil {
		t.Fatal(err)
	}
	if uncovered, err := m.CheckCheckpoints(logKey); err != nil || len(uncovered) != 0 {
		t.Errorf("checkpoints: uncovered %v, %v", uncovered, err)
	}
	if m.Rows != 21 || strings.Join(m.Tenants, ",") != "acme" || len(m.Partitions) != 1 || m.Partitions[0].Rows != 21 || m.Format != "ndjson" || m.OccurredFrom == "" {
		t.Errorf("manifest: %+v", m)
	}
}

// The console works from the keyboard alone: type a filter and press Enter, Tab to
// the first result and press Enter, and the event opens with its badge.
func TestConsoleKeyboardOnly(t *testing.T) {
	s := newConsoleStack(t)
	ctx := browsertest.New(t, 3*time.Minute)
	s.signIn(t, ctx, s.key)
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("q")), chromedp.KeyEvent("event:tool.executed\r")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `document.querySelectorAll('#results-body tr').length === 10`, `document.getElementById('search-status').textContent`); err != nil {
		t.Fatal(err)
	}
	first, _ := browsertest.Eval[string](ctx, `document.querySelector('#results-body tr a').getAttribute('href')`)
	for i := 0; ; i++ {
		if i == 60 {
			t.Fatal("60 presses of Tab never reached the first result's link")
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		if href, _ := browsertest.Eval[string](ctx, `document.activeElement.getAttribute('href') || ''`); href == first {
			break
		}
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitFor(ctx, `document.getElementById('badge').classList.contains('ok')`, `location.hash + ' ' + document.getElementById('badge').textContent`); err != nil {
		t.Fatal(err)
	}
}
