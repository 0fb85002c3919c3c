// Package redact removes secrets from event text before anything is written.
//
// Detection is gitleaks' rule set and engine (github.com/zricethezav/gitleaks/v8/detect):
// ~200 maintained rules for cloud keys, tokens and private keys with keyword
// pre-filtering and entropy checks. Gitleaks targets source files, so two shapes that
// matter for agent audit logs are added as extra rules in the same engine: a password in
// URL user-info (postgres://u:pw@host) and a password passed as a command-line flag or
// an Authorization header value.
//
// A secret is replaced in place by "[REDACTED:<rule>]" so the surrounding command stays
// readable, and the caller records {field, rule} in the event's redactions.
package redact

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
)

// extraRules are appended to gitleaks' default configuration. They are written in the
// gitleaks rule format so that they run through the same keyword pre-filter, allowlists
// and secret-group extraction as the maintained rules.
const extraRules = `
[[rules]]
id = "trailkeep-url-password"
description = "Password in the user-info part of a URL"
regex = '''[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'"]{1,128}:([^\s@/'"]{1,256})@[^\s/'"]'''
secretGroup = 1
keywords = ["://"]

[[rules]]
id = "trailkeep-cli-password"
description = "Password or token given as a command-line flag or environment assignment"
regex = '''(?i)(?:--?(?:password|passwd|pass|token|secret|api[-_]?key)[= ]|\b(?:[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY))=)['"]?([^\s'"]{4,256})'''
secretGroup = 1
keywords = ["pass", "token", "secret", "api_key", "api-key", "apikey"]

[[rules]]
id = "trailkeep-authorization-header"
description = "Credentials in an HTTP Authorization header"
regex = '''(?i)authorization:\s*(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{8,})'''
secretGroup = 1
keywords = ["authorization"]
`

// Redactor finds and masks secrets. It is safe for concurrent use.
type Redactor struct {
	det *detect.Detector
}

// New builds a Redactor from gitleaks' default rules plus trailkeep's extra rules.
// Building compiles ~200 regular expressions (tens of milliseconds): do it once.
func New() (*Redactor, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig + "\n" + extraRules)); err != nil {
		return nil, fmt.Errorf("redact: read gitleaks rules: %w", err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return nil, fmt.Errorf("redact: decode gitleaks rules: %w", err)
	}
	cfg, err := vc.Translate()
	if err != nil {
		return nil, fmt.Errorf("redact: compile gitleaks rules: %w", err)
	}
	det := detect.NewDetector(cfg)
	// Secrets hidden in base64/percent/hex encodings are decoded and scanned too.
	det.MaxDecodeDepth = 2
	return &Redactor{det: det}, nil
}

// minSecret is shorter than any secret a rule matches; shorter strings skip the scan.
const minSecret = 8

// Finding is one secret found in a string.
type Finding struct {
	Rule   string // gitleaks rule id, e.g. aws-access-token
	Secret string
}

// String returns s with every secret replaced by "[REDACTED:<rule>]" and the rules
// that fired, sorted and without duplicates. A string without secrets is returned
// unchanged with a nil slice.
func (r *Redactor) String(s string) (string, []string) {
	if len(s) < minSecret {
		return s, nil // no rule matches a secret this short; skip the scan
	}
	findings := r.det.DetectString(s)
	if len(findings) == 0 {
		return s, nil
	}
	// Replace longest secrets first so a secret that contains another is masked whole.
	sort.Slice(findings, func(i, j int) bool { return len(findings[i].Secret) > len(findings[j].Secret) })
	rules := make([]string, 0, len(findings))
	for _, f := range findings {
		secret := f.Secret
		if secret == "" {
			secret = f.Match
		}
		if secret == "" || !strings.Contains(s, secret) {
			// A secret found only after decoding (base64 etc.) is not present
			// verbatim: mask the whole value rather than keep it.
			if secret != "" {
				s = "[REDACTED:" + f.RuleID + "]"
				rules = append(rules, f.RuleID)
			}
			continue
		}
		s = strings.ReplaceAll(s, secret, "[REDACTED:"+f.RuleID+"]")
		rules = append(rules, f.RuleID)
	}
	sort.Strings(rules)
	return s, compact(rules)
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Applied is one redaction to record in an event: the JSON pointer of the field and
// the rule that fired.
type Applied struct {
	Field string
	Rule  string
}

// Value redacts every string inside v (a decoded JSON value: map[string]any, []any,
// string or scalar) in place and returns the new value and what was redacted, with
// field pointers rooted at ptr. Map keys are not rewritten.
func (r *Redactor) Value(v any, ptr string) (any, []Applied) {
	var out []Applied
	var walk func(v any, ptr string) any
	walk = func(v any, ptr string) any {
		switch x := v.(type) {
		case string:
			red, rules := r.String(x)
			for _, rule := range rules {
				out = append(out, Applied{Field: ptr, Rule: rule})
			}
			return red
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e, ptr+"/"+escape(k))
			}
			return x
		case []any:
			for i, e := range x {
				x[i] = walk(e, fmt.Sprintf("%s/%d", ptr, i))
			}
			return x
		default:
			return v
		}
	}
	v = walk(v, ptr)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Rule < out[j].Rule
	})
	return v, out
}

// escape encodes a map key as an RFC 6901 reference token.
func escape(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}
