package bearer

import (
	"errors"
	"strings"
	"testing"
)

type cfgEntry struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Tenant string `json:"tenant"`
}

func (e *cfgEntry) Digest() string    { return e.SHA256 }
func (e *cfgEntry) TokenName() string { return e.Name }

func TestParseConfig(t *testing.T) {
	d1, d2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	check := func(e *cfgEntry) error {
		if e.Tenant == "" {
			return errors.New("tenant is required")
		}
		return nil
	}
	for _, tc := range []struct {
		name, data, want string
		n                int
	}{
		{"two tokens", `{"tokens":[{"name":"a","sha256":"` + d1 + `","tenant":"x"},{"name":"b","sha256":"` + d2 + `","tenant":"y"}]}`, "", 2},
		{"misspelt field", `{"tokens":[{"name":"a","sha256":"` + d1 + `","tennant":"x"}]}`, `unknown field "tennant"`, 0},
		{"data after the object", `{"tokens":[{"name":"a","sha256":"` + d1 + `","tenant":"x"}]} {"tokens":[]}`, "data after the JSON object", 0},
		{"bad digest", `{"tokens":[{"name":"a","sha256":"abc","tenant":"x"}]}`, `test: token 0 ("a"): sha256 must be 64 hex digits`, 0},
		{"the same secret twice", `{"tokens":[{"name":"a","sha256":"` + d1 + `","tenant":"x"},{"name":"b","sha256":"` + d1 + `","tenant":"y"}]}`, `token 1 ("b"): the same token is configured twice`, 0},
		{"check fails", `{"tokens":[{"name":"a","sha256":"` + d1 + `"}]}`, `token 0 ("a"): tenant is required`, 0},
		{"empty", `{"tokens":[]}`, "no tokens configured", 0},
		{"not JSON", `tokens: []`, "expected {shape}", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseConfig([]byte(tc.data), "test", "{shape}", check)
			if tc.want == "" {
				if err != nil || len(m) != tc.n {
					t.Fatalf("got %d entries, %v; want %d", len(m), err, tc.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want it to contain %q", err, tc.want)
			}
		})
	}
}
