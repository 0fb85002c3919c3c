package version

import (
	"strings"
	"testing"
)

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
