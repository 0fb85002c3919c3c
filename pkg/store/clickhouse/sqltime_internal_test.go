package clickhouse

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// timeAgainstDateTime finds a time column compared with toDateTime(...), either way
// round. ClickHouse 26.5 answers a DateTime64(9) column (the modern DDL's
// chained_at, occurred_at, received_at) compared with a DateTime wrongly: below
// it as false for every row, and a record alone in its part not at all.
var timeAgainstDateTime = regexp.MustCompile(`\b\w+_at\s*(>=|<=|<>|!=|=|<|>)\s*toDateTime\(|toDateTime\([^)]*\)\s*(>=|<=|<>|!=|=|<|>)\s*\w+_at\b`)

// TestNoTimeColumnComparedWithToDateTime: every statement of this package and of
// the filter language compares a function of a time column (toUnixTimestamp,
// toYYYYMMDD) with integers instead. It reads the packages' own source, so a new
// statement cannot bring the comparison back.
func TestNoTimeColumnComparedWithToDateTime(t *testing.T) {
	if !timeAgainstDateTime.MatchString(`chained_at >= toDateTime(?)`) || !timeAgainstDateTime.MatchString(`toDateTime(?) > occurred_at`) {
		t.Fatal("the pattern misses the comparison it is for")
	}
	for _, dir := range []string{".", "../../query"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %d files, %v", dir, len(files), err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				if m := timeAgainstDateTime.FindString(line); m != "" {
					t.Errorf("%s:%d compares a time column with toDateTime: %q", f, i+1, m)
				}
			}
		}
	}
}

// TestNoTimeArguments: a time.Time argument reaches the embedded engine as
// toDateTime('...'), the comparison above; statements bind seconds or nanoseconds
// as integers.
func TestNoTimeArguments(t *testing.T) {
	for _, q := range Queries("db", 0, 3) {
		for i, a := range q.Args {
			if _, ok := a.(time.Time); ok {
				t.Errorf("%s: argument %d is a time.Time", q.Name, i)
			}
		}
	}
}
