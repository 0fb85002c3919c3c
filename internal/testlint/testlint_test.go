// Package testlint holds the repository's tests to one rule go vet does not check: a
// test must not drop the error of a call whose result it goes on to rely on (an
// unchecked json.Unmarshal leaves a zero value that can make an assertion pass; an
// unchecked os.WriteFile leaves the command reading something else).
package testlint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/repo"
)

// mustCheck are the calls whose error a test must check: package.Function, or
// .Method for a method of any receiver.
var mustCheck = map[string]bool{
	"json.Unmarshal": true, "os.WriteFile": true, "os.MkdirAll": true, "os.Mkdir": true,
	"io.ReadAll": true, "os.ReadFile": true, "hectest.Check": true, "yaml.Unmarshal": true,
}

func TestTestsCheckErrors(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch s := n.(type) {
			case *ast.ExprStmt:
				if name := callName(s.X); mustCheck[name] {
					found = append(found, fset.Position(s.Pos()).String()+": "+name+" error dropped")
				}
			case *ast.AssignStmt:
				if len(s.Rhs) == 1 {
					if id, ok := s.Lhs[len(s.Lhs)-1].(*ast.Ident); ok && id.Name == "_" {
						if name := callName(s.Rhs[0]); mustCheck[name] {
							found = append(found, fset.Position(s.Pos()).String()+": "+name+" error assigned to _")
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		rel, _ := filepath.Rel(root, f)
		t.Error(rel)
	}
}

// callName is "pkg.Func" for a call of a package-level function.
func callName(e ast.Expr) string {
	c, ok := e.(*ast.CallExpr)
	if !ok {
		return ""
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if x, ok := sel.X.(*ast.Ident); ok {
		return x.Name + "." + sel.Sel.Name
	}
	return ""
}
