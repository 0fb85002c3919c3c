// Package secretcorpus reads the secret corpus (pkg/redact/testdata/secrets.txt) for
// the tests that hold trailkeep to "no secret is ever stored": pkg/redact's own, and
// the producers' tests that plant every secret in every field of every source.
package secretcorpus

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/repo"
)

// Secret is one corpus entry: the text to plant, and Core, the part of it that is
// the credential and must never survive (for rules with a secret group, the group).
type Secret struct {
	Rule, Text, Core string
}

// Read returns the corpus, failing the test on a malformed line.
func Read(t testing.TB) []Secret {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "pkg/redact/testdata/secrets.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Secret
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rule, text, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("secrets.txt: %q has no tab", line)
		}
		text = strings.ReplaceAll(text, `\n`, "\n")
		out = append(out, Secret{Rule: rule, Text: text, Core: core(rule, text)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// core is the part of text that is the credential itself.
func core(rule, text string) string {
	switch rule {
	case "trailkeep-url-password": // scheme://user:PASSWORD@host
		rest := text[strings.Index(text, "://")+3:]
		return rest[strings.IndexByte(rest, ':')+1 : strings.IndexByte(rest, '@')]
	case "trailkeep-cli-password":
		return text[strings.IndexByte(text, '=')+1:]
	case "trailkeep-authorization-header":
		return text[strings.LastIndexByte(text, ' ')+1:]
	case "private-key":
		return strings.Split(text, "\n")[1]
	}
	return text
}
