package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/source/claudecode"
)

func TestHooksPrintConfig(t *testing.T) {
	out := mustRun(t, "hooks", "print-config", "--url", "https://tk.example.com/", "--token-env", "TK")
	var cfg struct {
		Hooks map[string][]struct {
			Matcher string           `json:"matcher"`
			Hooks   []map[string]any `json:"hooks"`
		} `json:"hooks"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	pre := cfg.Hooks["PreToolUse"][0]
	h := pre.Hooks[0]
	if pre.Matcher != "*" || h["type"] != "http" || h["url"] != "https://tk.example.com/v1/hooks/claude-code" ||
		h["headers"].(map[string]any)["Authorization"] != "Bearer $TK" || h["allowedEnvVars"].([]any)[0] != "TK" {
		t.Errorf("PreToolUse hook %v", pre)
	}
	ss := cfg.Hooks["SessionStart"][0].Hooks[0]
	if ss["type"] != "command" || !strings.Contains(ss["command"].(string), "$TK") || !strings.Contains(ss["command"].(string), "--data-binary @-") {
		t.Errorf("SessionStart hook %v", ss)
	}
	if _, ok := cfg.Hooks["PostToolUse"]; !ok {
		t.Error("PostToolUse missing")
	}
	// Generated from the mapper's table: every event, each with the handler it
	// accepts, except those where an audit hook would change Claude Code's behaviour.
	for _, ev := range claudecode.Events {
		entries, ok := cfg.Hooks[ev.Name]
		switch {
		case ev.Unsafe != "" && ok:
			t.Errorf("print-config registers %s: %s", ev.Name, ev.Unsafe)
		case ev.Unsafe == "" && !ok:
			t.Errorf("print-config does not register %s", ev.Name)
		case ok && ev.Command && entries[0].Hooks[0]["type"] != "command":
			t.Errorf("%s accepts only command hooks; got %v", ev.Name, entries[0].Hooks[0]["type"])
		case ok && !ev.Command && entries[0].Hooks[0]["type"] != "http":
			t.Errorf("%s: hook type %v, want http", ev.Name, entries[0].Hooks[0]["type"])
		case ok && ev.Matcher != (entries[0].Matcher == "*"):
			t.Errorf("%s: matcher %q", ev.Name, entries[0].Matcher)
		}
	}
	if len(cfg.Hooks) != len(claudecode.Events)-3 {
		t.Errorf("%d events registered, want %d (all but the three unsafe ones)", len(cfg.Hooks), len(claudecode.Events)-3)
	}
	for _, bad := range [][]string{{"--url", "tk.example.com"}, {"--url", "https://x", "--token-env", "not-a-var"}, {}} {
		if _, _, code := run(t, append([]string{"hooks", "print-config"}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

func TestTokensCreate(t *testing.T) {
	out := mustRun(t, "tokens", "create", "--name", "sarah-laptop", "--tenant", "acme", "--actor-id", "sarah@acme.example")
	var res struct {
		Token string       `json:"token"`
		Entry ingest.Token `json:"entry"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(res.Token))
	if res.Entry.SHA256 != hex.EncodeToString(sum[:]) || res.Entry.Tenant != "acme" || res.Entry.Actor["id"] != "sarah@acme.example" {
		t.Errorf("entry %+v", res.Entry)
	}
	if strings.Contains(out, `"sha256": "`+res.Token) {
		t.Error("secret stored in the entry")
	}
	if _, _, code := run(t, "tokens", "create", "--name", "x", "--tenant", "Not A Slug"); code != 2 {
		t.Errorf("bad tenant: exit %d", code)
	}
}

func TestTokensQueryExpires(t *testing.T) {
	for _, tc := range []struct {
		name, expires string
		wantCode      int
	}{
		{"rfc3339 in the future", "2099-01-31T00:00:00Z", 0},
		{"duration", "720h", 0},
		{"in the past", "2001-01-01T00:00:00Z", 2},
		{"negative duration", "-1h", 2},
		{"zero duration", "0s", 2},
		{"not a time", "next tuesday", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, code := run(t, "tokens", "query", "--name", "audit-q1", "--role", "auditor", "--tenant", "acme", "--expires", tc.expires)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d (%s)", code, tc.wantCode, out)
			}
			if code != 0 {
				return
			}
			var res struct {
				Token string         `json:"token"`
				Entry queryapi.Token `json:"entry"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			if res.Entry.ExpiresAt == nil || !res.Entry.ExpiresAt.After(time.Now()) {
				t.Fatalf("expires_at %v, want a future instant", res.Entry.ExpiresAt)
			}
			// The entry must be accepted by the query API as printed (expiry itself is
			// tested in pkg/queryapi).
			file, _ := json.Marshal(map[string]any{"tokens": []queryapi.Token{res.Entry}})
			if _, err := queryapi.ParseTokens(file); err != nil {
				t.Fatalf("query API refuses the printed entry: %v", err)
			}
		})
	}
}

func TestHooksPrintConfigOTel(t *testing.T) {
	t.Setenv("TK_OTEL", "tk_secret_value")
	out := mustRun(t, "hooks", "print-config", "--otel", "--url", "https://tk.example.com/", "--token-env", "TK_OTEL")
	var cfg struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://tk.example.com/v1/logs", "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "Authorization=Bearer tk_secret_value"}
	for k, v := range want {
		if cfg.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg.Env[k], v)
		}
	}
	t.Setenv("TK_OTEL", "")
	if _, _, code := run(t, "hooks", "print-config", "--otel", "--url", "https://tk.example.com/", "--token-env", "TK_OTEL"); code != 2 {
		t.Errorf("without a token: exit %d, want 2", code)
	}
}
