package sourcetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutsStayOnCharacters(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
	}{{"héllo wörld", 2}, {strings.Repeat("é", 100), 51}, {strings.Repeat("a", 10), 10}, {"日本語テキスト", 7}} {
		c := Clip(tc.in, tc.limit)
		if len(c) > tc.limit || !utf8.ValidString(c) || !strings.HasPrefix(tc.in, c) {
			t.Errorf("Clip(%q, %d) = %q", tc.in, tc.limit, c)
		}
		tr := Truncate(tc.in, tc.limit+len(TruncMarker))
		if len(tr) > tc.limit+len(TruncMarker) || !utf8.ValidString(tr) || (tr != tc.in && !strings.HasSuffix(tr, TruncMarker)) {
			t.Errorf("Truncate(%q) = %q", tc.in, tr)
		}
	}
	if got := StripControl("a\x00b\tc\nd\x7f\x1b"); got != "ab\tc\nd" {
		t.Errorf("StripControl: %q", got)
	}
	if d := Digest([]byte("x")); !strings.HasPrefix(d, "sha256:") || len(d) != 71 {
		t.Errorf("Digest: %q", d)
	}
}
