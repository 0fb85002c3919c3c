package clickhouse

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

// TestPositionText: a position survives its text form (a tail's cursor through the
// query API), and a malformed one is refused rather than read as "from the start"
// or as another partition's place.
func TestPositionText(t *testing.T) {
	for _, pos := range []Position{{}, {0: 0}, {3: 17, 0: 5, 1: 1<<64 - 1}, {2147483647: 9}} {
		t.Run(pos.String(), func(t *testing.T) {
			back, err := ParsePosition(pos.String())
			if err != nil || !maps.Equal(back, pos) {
				t.Fatalf("ParsePosition(%q) = %v, %v; want %v", pos.String(), back, err, pos)
			}
		})
	}
	if got := (Position{3: 17, 0: 5}).String(); got != "0:5,3:17" {
		t.Errorf("String = %q, want partitions in order", got)
	}
	var many []string
	for p := 0; p <= maxPositionPartitions; p++ {
		many = append(many, fmt.Sprintf("%d:1", p))
	}
	for name, text := range map[string]string{
		"no seq":         "0",
		"empty item":     "0:1,",
		"negative part":  "-1:4",
		"negative seq":   "0:-4",
		"part overflow":  "2147483648:1",
		"seq overflow":   "0:18446744073709551616",
		"duplicate":      "1:4,1:5",
		"spaces":         "0: 4",
		"not numbers":    "a:b",
		"too many parts": strings.Join(many, ","),
	} {
		t.Run(name, func(t *testing.T) {
			if pos, err := ParsePosition(text); err == nil {
				t.Fatalf("ParsePosition(%.40q) = %v, want an error", text, pos)
			}
		})
	}
}

// FuzzParsePosition: whatever parses prints back to a text that parses to the same
// position, so a client that stores the API's position and sends it again resumes
// exactly there.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"", "0:1", "0:5,3:17", "1:4,1:5", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		pos, err := ParsePosition(text)
		if err != nil {
			return
		}
		back, err := ParsePosition(pos.String())
		if err != nil || !maps.Equal(back, pos) {
			t.Fatalf("%q parsed to %v, printed %q, parsed back to %v, %v", text, pos, pos.String(), back, err)
		}
	})
}
