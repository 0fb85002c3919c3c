package service

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandleArgs(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.Write([]byte("ok"))
			return
		}
		http.Error(w, "starting: writer", http.StatusServiceUnavailable)
	}))
	defer up.Close()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		done   bool
		stdout string
		stderr string
	}{
		{"no arguments: run", nil, 0, false, "", ""},
		{"version", []string{"--version"}, 0, true, "ingest ", ""},
		{"version word", []string{"version"}, 0, true, "ingest ", ""},
		{"probe ready", []string{"--probe", up.URL + "/readyz"}, 0, true, "", ""},
		{"probe not ready", []string{"--probe", up.URL + "/other"}, 1, true, "", "503"},
		{"probe nothing listening", []string{"--probe", "http://127.0.0.1:1/readyz"}, 1, true, "", "probe"},
		{"probe without URL", []string{"--probe"}, 2, true, "", "unexpected arguments"},
		{"typo", []string{"--verison"}, 2, true, "", "only arguments are --version and --probe"},
		{"extra", []string{"--version", "x"}, 2, true, "", "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code, done := handleArgs("ingest", tc.args, &out, &errb)
			if code != tc.code || done != tc.done {
				t.Fatalf("handleArgs(%q) = %d, %v; want %d, %v (stderr %q)", tc.args, code, done, tc.code, tc.done, errb.String())
			}
			if !strings.HasPrefix(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
			}
		})
	}
}
