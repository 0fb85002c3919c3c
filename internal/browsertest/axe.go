package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/npmfetch"
	"github.com/trailkeep/trailkeep/internal/repo"
)

// axe is the pinned accessibility engine (npm view axe-core@4.14.1 dist.integrity).
var axe = npmfetch.Package{Name: "axe-core", Version: "4.14.1",
	Integrity: "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="}

// Violation is one axe-core rule a page breaks.
type Violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, ", "))
}

// Axe runs axe-core (WCAG 2 A and AA rules) on the page shown in ctx and returns
// the violations of serious or critical impact. The engine is fetched once into
// .tools/ and injected through DevTools, so the page's CSP stays as it is.
func Axe(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, ".tools", "axe-core", axe.Version, "axe.min.js")
	if err := npmfetch.File(axe, "package/axe.min.js", path, os.Stderr); err != nil {
		t.Fatalf("browsertest: axe-core: %v", err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Eval[bool](ctx, string(src)+"\n;true"); err != nil {
		t.Fatalf("browsertest: load axe-core: %v", err)
	}
	vs, err := Eval[[]Violation](ctx, `axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}).then((r) =>
	  r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({
	    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')),
	  })))`)
	if err != nil {
		t.Fatalf("browsertest: axe.run: %v", err)
	}
	return vs
}
