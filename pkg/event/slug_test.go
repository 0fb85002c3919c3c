package event

import (
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trailkeep/trailkeep/schemas"
)

// TestIsSlugMatchesTheSchema holds IsSlug, SlugPattern and the event schema's own
// $defs.slug (pattern, minLength, maxLength) to one answer: every string of up to
// three characters over an alphabet of the class edges, and long random ones around
// the length limit.
func TestIsSlugMatchesTheSchema(t *testing.T) {
	raw, err := schemas.FS.ReadFile(schemas.EventV1)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Slug struct {
				Pattern   string `json:"pattern"`
				MinLength int    `json:"minLength"`
				MaxLength int    `json:"maxLength"`
			} `json:"slug"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	def := doc.Defs.Slug
	if def.Pattern == "" || def.MaxLength == 0 {
		t.Fatalf("the schema has no $defs.slug with a pattern and maxLength: %+v", def)
	}
	schemaRE := regexp.MustCompile(def.Pattern)
	schema := func(s string) bool {
		n := utf8.RuneCountInString(s)
		return n >= def.MinLength && n <= def.MaxLength && schemaRE.MatchString(s)
	}
	goRE := regexp.MustCompile(SlugPattern)
	check := func(s string) {
		want := schema(s)
		if got := IsSlug(s); got != want {
			t.Fatalf("IsSlug(%q) = %v, the schema says %v", s, got, want)
		}
		if got := goRE.MatchString(s); got != want {
			t.Fatalf("SlugPattern on %q = %v, the schema says %v", s, got, want)
		}
	}
	alphabet := []string{"a", "z", "0", "9", "_", ".", "-", "A", "Z", "`", "{", "/", ":", " ", "\x00", "\n", "é", "\xff"}
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		check(prefix)
		if depth == 3 {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, depth+1)
		}
	}
	walk("", 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range 60 + rng.IntN(8) {
			if rng.IntN(200) == 0 {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			} else {
				b.WriteString(alphabet[rng.IntN(7)])
			}
		}
		check(b.String())
	}
}
