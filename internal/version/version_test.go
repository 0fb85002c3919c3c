package version

import (
	"bytes"
	"strings"
	"testing"
)

func TestHandleFlag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		done    bool
		wantErr bool
	}{
		{"none", nil, false, false},
		{"long", []string{"--version"}, true, false},
		{"single dash", []string{"-version"}, true, false},
		{"word", []string{"version"}, true, false},
		{"typo", []string{"--verison"}, false, true},
		{"extra", []string{"--version", "x"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			done, err := HandleFlag("ingest", tc.args, &out)
			if done != tc.done || (err != nil) != tc.wantErr {
				t.Fatalf("HandleFlag(%q) = %v, %v; want done=%v err=%v", tc.args, done, err, tc.done, tc.wantErr)
			}
			if done && !strings.HasPrefix(out.String(), "ingest ") {
				t.Fatalf("printed %q", out.String())
			}
		})
	}
}

func TestGetUsesLinkedValues(t *testing.T) {
	Version, Commit, Date = "v9.9.9", "abc123", "2026-12-02T00:00:00Z"
	defer func() { Version, Commit, Date = "", "", "" }()
	got := Get("query").String()
	for _, want := range []string{"query v9.9.9", "commit abc123", "built 2026-12-02T00:00:00Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}
