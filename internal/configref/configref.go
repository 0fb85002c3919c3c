// Package configref generates the configuration reference (CONFIGURATION.md at the
// repository root): every environment variable each binary reads, with its default
// and meaning, taken from the go-envconfig structs themselves — the field's env tag
// and its doc comment — so the document cannot drift from the code; a test fails
// when the file is stale.
package configref

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// Binary names a binary and the struct its configuration is read into.
type Binary struct {
	Name, Dir, Type, About string
}

// Binaries are the binaries configured from the environment, in the order shown.
var Binaries = []Binary{
	{"ingest", "internal/app/ingest", "Config", "the HTTP front door: hooks, events, CloudEvents, OTLP logs"},
	{"chainer", "internal/app/chainer", "Config", "the chainer and the ClickHouse writer"},
	{"exporter", "internal/app/exporter", "Config", "the sinks: Splunk HEC, Datadog Logs, S3 Object Lock"},
	{"query", "internal/app/query", "Config", "the query API"},
	{"trailctl", "cmd/trailctl", "storeFlags", "the CLI's direct ClickHouse access (flags override)"},
}

// Var is one environment variable.
type Var struct {
	Name, Default, Type, Doc string
	// Required: the binary refuses to start without it (go-envconfig "required").
	Required bool
}

const module = "github.com/trailkeep/trailkeep/"

// Collect returns each binary's variables, read from the sources under root.
func Collect(root string) (map[string][]Var, error) {
	out := map[string][]Var{}
	for _, b := range Binaries {
		p := &parsed{root: root, pkgs: map[string]*pkg{}}
		vars, err := p.structVars(filepath.Join(root, b.Dir), b.Type)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name, err)
		}
		out[b.Name] = vars
	}
	return out, nil
}

type pkg struct {
	files []*ast.File
}

type parsed struct {
	root string
	fset token.FileSet
	pkgs map[string]*pkg
}

func (p *parsed) load(dir string) (*pkg, error) {
	if k, ok := p.pkgs[dir]; ok {
		return k, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	k := &pkg{}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(&p.fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		k.files = append(k.files, f)
	}
	p.pkgs[dir] = k
	return k, nil
}

// structVars lists the env variables of struct typ in dir, following struct-typed
// fields without an env tag into their own package (go-envconfig does the same).
func (p *parsed) structVars(dir, typ string) ([]Var, error) {
	k, err := p.load(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range k.files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if ts.Name.Name != typ || !ok {
					continue
				}
				return p.fields(dir, f, st)
			}
		}
	}
	return nil, fmt.Errorf("type %s not found in %s", typ, dir)
}

func (p *parsed) fields(dir string, f *ast.File, st *ast.StructType) ([]Var, error) {
	var out []Var
	// A field without a comment of its own shares the comment of the field above it
	// when that comment names it ("SASLUser and SASLPassword authenticate.").
	group := ""
	for _, fld := range st.Fields.List {
		doc := ""
		switch {
		case fld.Doc != nil:
			doc, group = text(fld.Doc), text(fld.Doc)
		case fld.Comment != nil:
			doc, group = text(fld.Comment), text(fld.Comment)
		case len(fld.Names) > 0 && strings.Contains(group, fld.Names[0].Name):
			doc = group
		}
		tag := ""
		if fld.Tag != nil {
			tag = reflect.StructTag(strings.Trim(fld.Tag.Value, "`")).Get("env")
		}
		if tag == "" {
			sub, err := p.nested(dir, f, fld.Type)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		v := Var{Name: strings.TrimSpace(name), Type: typeString(fld.Type), Doc: doc}
		for _, o := range strings.Split(opts, ",") {
			if d, ok := strings.CutPrefix(strings.TrimSpace(o), "default="); ok {
				v.Default = d
			}
			if strings.TrimSpace(o) == "required" {
				v.Required = true
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// nested follows a struct-typed field (local or pkg.Type of this module).
func (p *parsed) nested(dir string, f *ast.File, t ast.Expr) ([]Var, error) {
	switch x := t.(type) {
	case *ast.Ident:
		return p.structVars(dir, x.Name)
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		if !ok {
			return nil, nil
		}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			name := filepath.Base(path)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if name == id.Name && strings.HasPrefix(path, module) {
				return p.structVars(filepath.Join(p.root, strings.TrimPrefix(path, module)), x.Sel.Name)
			}
		}
	}
	return nil, nil
}

func text(c *ast.CommentGroup) string {
	return strings.Join(strings.Fields(c.Text()), " ")
}

func typeString(t ast.Expr) string {
	switch x := t.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.ArrayType:
		return "list of " + typeString(x.Elt) + " (comma-separated)"
	case *ast.SelectorExpr:
		if x.Sel.Name == "Duration" {
			return "duration (e.g. 30s, 15m)"
		}
		return typeString(x.X) + "." + x.Sel.Name
	case *ast.MapType:
		return "map (key:value,...)"
	}
	return "value"
}

// Markdown renders the reference.
func Markdown(vars map[string][]Var) string {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Every environment variable each binary reads, with its default and meaning. Generated from the\n")
	b.WriteString("configuration structs (`internal/configref`); `go test ./internal/configref -update` rewrites it,\n")
	b.WriteString("and the test fails when it is stale.\n")
	for _, bin := range Binaries {
		fmt.Fprintf(&b, "\n## %s\n\n%s (`%s`).\n\n", bin.Name, upperFirst(bin.About), bin.Dir)
		b.WriteString("| variable | default | type | meaning |\n|---|---|---|---|\n")
		vs := append([]Var(nil), vars[bin.Name]...)
		sort.SliceStable(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
		for _, v := range vs {
			def := "—"
			if v.Required {
				def = "**required**"
			}
			if v.Default != "" {
				def = "`" + v.Default + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Name, def, v.Type, strings.ReplaceAll(v.Doc, "|", "\\|"))
		}
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
