package redact

import (
	"strings"
	"testing"
)

func newRedactor(t testing.TB) *Redactor {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStringFindsSecrets(t *testing.T) {
	r := newRedactor(t)
	cases := []struct {
		name, in, secret, rule string
	}{
		{"github pat", "git clone https://github.com/acme/x && export GH=ghp_R9xq2Lm7Vb4Tz8Yk1Wc6Nd3Fp5Hs0Ja2Ue7Q", "ghp_R9xq2Lm7Vb4Tz8Yk1Wc6Nd3Fp5Hs0Ja2Ue7Q", "github-pat"},
		{"aws key", "aws configure set aws_access_key_id AKIAZ7QW3RT5YU2PLK4M", "AKIAZ7QW3RT5YU2PLK4M", "aws-access-token"},
		{"url password", "psql postgres://app:Sup3rS3cretPw@db.internal:5432/pay", "Sup3rS3cretPw", "trailkeep-url-password"},
		{"cli flag", "mysql -u root --password=hunter2hunter2 payments", "hunter2hunter2", "trailkeep-cli-password"},
		{"env assignment", "DB_PASSWORD=Xk92mQ7pLz npm run migrate", "Xk92mQ7pLz", "trailkeep-cli-password"},
		{"auth header", `curl -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl" https://api`, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", ""},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7b9q3k3vJm4nqYh7aXwzXn5pQ8Vt2sF9dLrJ0kM1uN2oP3qR4sT5uV6wX7yZ8aB9cD0eF1gH2iJ3kL4mN5oP6qR7sT8uV9wX0yZ1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uV2wX3yZ4aB5cD6eF7gH8iJ9kL0mN1oP2qR3sT4uV5wX6yZ7aB8cD9eF0g\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA7b9q3k3vJm4nqYh7", "private-key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, rules := r.String(c.in)
			if strings.Contains(out, c.secret) {
				t.Fatalf("secret survived: %q (rules %v)", out, rules)
			}
			if len(rules) == 0 || !strings.Contains(out, "[REDACTED:") {
				t.Fatalf("no redaction recorded: %q %v", out, rules)
			}
			if c.rule != "" {
				found := false
				for _, r := range rules {
					found = found || r == c.rule
				}
				if !found {
					t.Errorf("rules %v, want %s among them", rules, c.rule)
				}
			}
		})
	}
}

func TestStringLeavesOrdinaryTextAlone(t *testing.T) {
	r := newRedactor(t)
	for _, s := range []string{
		"npm test -- refunds",
		"git push --force origin main",
		"/home/dev/payments-api/src/routes/refunds.ts",
		"const body = RefundSchema.parse(req.body);",
		"add input validation to POST /v1/refunds",
		"https://skills.acme.example/registry",
	} {
		if out, rules := r.String(s); out != s || rules != nil {
			t.Errorf("%q changed to %q (%v)", s, out, rules)
		}
	}
}

func TestValueRecordsPointers(t *testing.T) {
	r := newRedactor(t)
	v := map[string]any{
		"command": "curl https://deploy:Zq8Lm3Np9Vx@ci.acme.example/hook",
		"args":    []any{"ok", "--token=tok_8f7d6c5b4a39281706"},
		"a/b":     "fine",
		"n":       3.0,
	}
	_, applied := r.Value(v, "/tool_input")
	want := []Applied{
		{"/tool_input/args/1", "trailkeep-cli-password"},
		{"/tool_input/command", "trailkeep-url-password"},
	}
	if len(applied) != len(want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	for i := range want {
		if applied[i] != want[i] {
			t.Errorf("applied[%d] = %v, want %v", i, applied[i], want[i])
		}
	}
	if strings.Contains(v["command"].(string), "Zq8Lm3Np9Vx") || strings.Contains(v["args"].([]any)[1].(string), "tok_8f7d6c5b4a39281706") {
		t.Errorf("secrets survived: %v", v)
	}
}

func BenchmarkStringClean(b *testing.B) {
	r := newRedactor(b)
	s := "npm run migrate -- --env production && git status && ls -la src/routes"
	b.ReportAllocs()
	for b.Loop() {
		r.String(s)
	}
}

func TestDocument(t *testing.T) {
	r := newRedactor(t)
	doc := map[string]any{
		"metadata":   map[string]any{"cmd": "mysql --password=hunter2hunter2 db", "team": "payments"},
		"change":     map[string]any{"diff_summary": "rotated key AKIAZ7QW3RT5YU2PLK4M"},
		"result":     map[string]any{"status": "success", "reason": "fine"},
		"redactions": []any{map[string]any{"field": "/metadata/x", "rule": "client"}},
	}
	r.Document(doc)
	if strings.Contains(doc["metadata"].(map[string]any)["cmd"].(string), "hunter2") || strings.Contains(doc["change"].(map[string]any)["diff_summary"].(string), "AKIA") {
		t.Fatalf("secrets survived: %v", doc)
	}
	got := doc["redactions"].([]any)
	if len(got) != 3 || got[0].(map[string]any)["rule"] != "client" {
		t.Errorf("redactions %v", got)
	}
	clean := map[string]any{"metadata": map[string]any{"team": "payments"}}
	r.Document(clean)
	if _, ok := clean["redactions"]; ok {
		t.Error("clean document got redactions")
	}
}

func TestDocumentsBatch(t *testing.T) {
	r := newRedactor(t)
	clean := map[string]any{"metadata": map[string]any{"team": "payments platform"}}
	dirty := map[string]any{"metadata": map[string]any{"cmd": "psql postgres://app:Sup3rS3cretPw@db/pay"}}
	r.Documents([]map[string]any{clean, dirty})
	if _, ok := clean["redactions"]; ok {
		t.Error("clean document in a dirty batch got redactions")
	}
	if _, ok := dirty["redactions"]; !ok || strings.Contains(dirty["metadata"].(map[string]any)["cmd"].(string), "Sup3r") {
		t.Errorf("dirty document not redacted: %v", dirty)
	}
}
