package console_test

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/trailkeep/trailkeep/pkg/console"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestEveryResponseCarriesTheSecurityHeaders(t *testing.T) {
	h := console.Handler()
	for _, path := range []string{"/ui/", "/ui/index.html", "/ui/app.js", "/ui/verify.js", "/ui/style.css", "/ui/no/such/view", "/ui/../v1/events"} {
		t.Run(path, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, path)
			want := map[string]string{"Content-Security-Policy": console.CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestCSPAllowsNothingFromElsewhereAndNoInlineCode(t *testing.T) {
	for _, directive := range strings.Split(console.CSP, ";") {
		d := strings.TrimSpace(directive)
		for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:", "data:", "blob:"} {
			for _, tok := range strings.Fields(d)[1:] {
				if tok == bad {
					t.Errorf("CSP directive %q allows %s", d, bad)
				}
			}
		}
	}
	for _, need := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(console.CSP, need) {
			t.Errorf("CSP lacks %q", need)
		}
	}
}

func TestAssetsAreServedWithTheirTypes(t *testing.T) {
	h := console.Handler()
	for path, ctype := range map[string]string{"/ui/": "text/html; charset=utf-8", "/ui/app.js": "text/javascript; charset=utf-8", "/ui/verify.js": "text/javascript; charset=utf-8", "/ui/style.css": "text/css; charset=utf-8"} {
		resp := get(t, h, http.MethodGet, path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q, want 200 %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
		}
	}
	// Unknown paths are views (index.html), so an address can be reloaded.
	resp := get(t, h, http.MethodGet, "/ui/event/abc")
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `<script type="module" src="/ui/app.js">`) {
		t.Errorf("/ui/event/abc: %d, want the index page", resp.StatusCode)
	}
}

func TestTheConsoleIsReadOnly(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		resp := get(t, console.Handler(), m, "/ui/")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /ui/: %d, want 405 with Allow", m, resp.StatusCode)
		}
	}
}

// The rules the CSP enforces in the browser, checked in the sources too, plus the
// ones it cannot enforce: values are written as text (no HTML sinks) and nothing is
// loaded from another origin.
func TestAssetsKeepTheirRules(t *testing.T) {
	rules := []struct {
		name string
		ext  string
		re   *regexp.Regexp
	}{
		{"URL of another origin", "", regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`)},
		{"HTML sink", ".js", regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\("|srcdoc`)},
		{"CSS import or font", ".css", regexp.MustCompile(`@import|@font-face|url\(`)},
	}
	err := fs.WalkDir(console.Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(console.Assets(), path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".html") {
			checkHTML(t, path, b)
		}
		// The SVG namespace names no resource; nothing is fetched from it.
		b = bytes.ReplaceAll(b, []byte(`"http://www.w3.org/2000/svg"`), nil)
		for _, r := range rules {
			if r.ext != "" && !strings.HasSuffix(path, r.ext) {
				continue
			}
			if m := r.re.Find(b); m != nil {
				t.Errorf("%s: %s: %q", path, r.name, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkHTML: scripts only by src (same origin), no event-handler or style
// attributes, no javascript: URLs.
func checkHTML(t *testing.T, path string, b []byte) {
	z := html.NewTokenizer(bytes.NewReader(b))
	inScript := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Errorf("%s: %v", path, z.Err())
			}
			return
		case html.TextToken:
			if text := strings.TrimSpace(string(z.Text())); inScript && text != "" {
				t.Errorf("%s: inline script %q", path, text)
			}
		case html.EndTagToken:
			inScript = false
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			inScript = tok.Data == "script"
			src := ""
			for _, a := range tok.Attr {
				k := strings.ToLower(a.Key)
				switch {
				case strings.HasPrefix(k, "on"):
					t.Errorf("%s: <%s %s=...>: event-handler attribute", path, tok.Data, a.Key)
				case k == "style":
					t.Errorf("%s: <%s style=...>: inline style", path, tok.Data)
				case (k == "href" || k == "src" || k == "action") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
					t.Errorf("%s: <%s %s=%q>", path, tok.Data, a.Key, a.Val)
				case k == "src":
					src = a.Val
				}
			}
			if inScript && !strings.HasPrefix(src, "/ui/") {
				t.Errorf("%s: <script> without a same-origin src", path)
			}
		}
	}
}
