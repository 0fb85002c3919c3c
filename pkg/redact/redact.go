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
// [Redactor.Document] applies it to every key and value of an event, whoever produced
// the event; it is the one pass every stored event goes through.
package redact

import (
	"fmt"
	"regexp"
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
	det      *detect.Detector
	plainDet *detect.Detector // the same rules without decoding passes (see anyFinding)
	pre      *prefilter       // which strings could hold a finding (see prefilter.go)
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
	plain := detect.NewDetector(cfg)
	plain.MaxDecodeDepth = 0
	pre, err := newPrefilter(cfg)
	if err != nil {
		return nil, err
	}
	return &Redactor{det: det, plainDet: plain, pre: pre}, nil
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
//
// Only the secrets are replaced: every occurrence of every finding is located in the
// original text and overlapping or touching spans are merged, so where two rules
// match one secret (a token that is also a URL password) the marker covers their
// union and the command around it stays readable. A secret found only after decoding
// (base64, percent, hex) has no span in the text; then the whole value is masked.
func (r *Redactor) String(s string) (string, []string) {
	return r.redact(s, marker)
}

// Key is String for a JSON object key: the marker is "REDACTED.<rule>", which keeps
// the key within the characters metadata keys allow.
func (r *Redactor) Key(s string) (string, []string) {
	return r.redact(s, keyMarker)
}

func marker(rules []string) string    { return "[REDACTED:" + strings.Join(rules, ",") + "]" }
func keyMarker(rules []string) string { return "REDACTED." + strings.Join(rules, ".") }

// span is one secret's place in the text and the rules that matched it.
type span struct {
	start, end int
	rules      []string
}

func (r *Redactor) redact(s string, mark func([]string) string) (string, []string) {
	if len(s) < minSecret {
		return s, nil // no rule matches a secret this short; skip the scan
	}
	findings := r.det.DetectString(s)
	if len(findings) == 0 {
		return s, nil
	}
	var spans []span
	var rules []string
	whole := false
	for _, f := range findings {
		secret := f.Secret
		if secret == "" {
			secret = f.Match
		}
		if secret == "" {
			continue
		}
		rules = append(rules, f.RuleID)
		found := false
		for from := 0; from < len(s); {
			i := strings.Index(s[from:], secret)
			if i < 0 {
				break
			}
			found = true
			spans = append(spans, span{from + i, from + i + len(secret), []string{f.RuleID}})
			from += i + len(secret)
		}
		whole = whole || !found
	}
	sort.Strings(rules)
	rules = compact(rules)
	if len(rules) == 0 {
		return s, nil
	}
	if whole {
		return mark(rules), rules
	}
	return replaceSpans(s, merge(spans), mark), rules
}

// merge sorts spans and unites those that overlap or touch.
func merge(spans []span) []span {
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			last.rules = append(last.rules, sp.rules...)
			continue
		}
		out = append(out, sp)
	}
	for i := range out {
		sort.Strings(out[i].rules)
		out[i].rules = compact(out[i].rules)
	}
	return out
}

func replaceSpans(s string, spans []span, mark func([]string) string) string {
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, sp := range spans {
		b.WriteString(s[at:sp.start])
		b.WriteString(mark(sp.rules))
		at = sp.end
	}
	b.WriteString(s[at:])
	return b.String()
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
// string or scalar) in place — object keys as well as values, at every depth — and
// returns the new value and what was redacted, with field pointers rooted at ptr. A
// key that holds a secret is renamed (see [Redactor.Key]); should the new name be
// taken, "#2", "#3", ... is appended, so no member is lost.
func (r *Redactor) Value(v any, ptr string) (any, []Applied) {
	return r.value(v, ptr, func(string) bool { return true })
}

// value is Value, renaming the keys of the objects at the pointers keysAt accepts.
func (r *Redactor) value(v any, ptr string, keysAt func(ptr string) bool) (any, []Applied) {
	var out []Applied
	var walk func(v any, ptr string) any
	walk = func(v any, ptr string) any {
		switch x := v.(type) {
		case string:
			if skipValue(x) {
				return x
			}
			red, rules := r.String(x)
			for _, rule := range rules {
				out = append(out, Applied{Field: ptr, Rule: rule})
			}
			return red
		case map[string]any:
			keys := keysAt(ptr)
			for _, k := range sortedKeys(x) {
				e := x[k]
				nk, rules := k, []string(nil)
				if keys {
					nk, rules = r.Key(k)
				}
				if rules != nil {
					delete(x, k)
					nk = freeKey(x, nk)
					for _, rule := range rules {
						out = append(out, Applied{Field: ptr + "/" + escape(nk), Rule: rule})
					}
				}
				x[nk] = walk(e, ptr+"/"+escape(nk))
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

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// freeKey returns k, or k#2, k#3, ... whichever m does not hold yet.
func freeKey(m map[string]any, k string) string {
	if _, taken := m[k]; !taken {
		return k
	}
	for n := 2; ; n++ {
		c := fmt.Sprintf("%s#%d", k, n)
		if _, taken := m[c]; !taken {
			return c
		}
	}
}

// skipValue reports strings whose shape the schema fixes and that cannot hold a
// secret — digests (sha256:<hex>), HMACs (64 hex digits) and UUIDs — which entropy
// rules could otherwise take for keys. Anything else is scanned.
func skipValue(s string) bool {
	switch len(s) { // the only lengths the expressions match, spared a regexp run per string
	case 64, 71:
		return digestLike.MatchString(s)
	case 36:
		return uuidLike.MatchString(s)
	}
	return false
}

var (
	digestLike = regexp.MustCompile(`^(sha256:)?[0-9a-f]{64}$`)
	uuidLike   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// escape encodes a map key as an RFC 6901 reference token.
func escape(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}
