// Package sqlcorpus reads the SQL scope corpus (pkg/sqlscope/testdata/corpus.txt)
// for the tests that hold pkg/sqlscope to it: its own unit and fuzz tests, and the
// differential oracle that runs the corpus on real ClickHouse servers.
package sqlcorpus

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/repo"
)

// Entry is one statement: OK means sqlscope must accept it (and the oracle runs
// it), otherwise it must be refused. SQL names the audit database as {db}.
type Entry struct {
	OK  bool
	SQL string
}

// Read returns the corpus, failing the test on a malformed line.
func Read(t testing.TB) []Entry {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "pkg/sqlscope/testdata/corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, sql, found := strings.Cut(line, "\t")
		if !found || (kind != "ok" && kind != "reject") {
			t.Fatalf("corpus line %q: want ok<TAB>sql or reject<TAB>sql", line)
		}
		out = append(out, Entry{OK: kind == "ok", SQL: sql})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
