package event

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ServerOwned returns the JSON pointers of the fields only trailkeep may set, sorted:
// every property the schema annotates with "x-server-owned": true (received_at,
// actor.ip_hmac, redactions, idempotency_conflict, ...). The schema is the one list;
// a new server field is protected, and tested, by being annotated there.
func ServerOwned() []string {
	list, err := serverOwned()
	if err != nil {
		panic(err) // the embedded schema is checked by the tests; it cannot be missing
	}
	return append([]string(nil), list...)
}

var serverOwned = sync.OnceValues(func() ([]string, error) {
	c, err := loadSchema()
	if err != nil {
		return nil, err
	}
	root, _ := c.doc.(map[string]any)
	var out []string
	var walk func(node map[string]any, ptr string)
	walk = func(node map[string]any, ptr string) {
		props, _ := node["properties"].(map[string]any)
		for name, p := range props {
			prop, _ := p.(map[string]any)
			if prop == nil {
				continue
			}
			if owned, _ := prop["x-server-owned"].(bool); owned {
				out = append(out, ptr+"/"+name)
				continue
			}
			walk(prop, ptr+"/"+name)
		}
	}
	walk(root, "")
	if len(out) == 0 {
		return nil, fmt.Errorf("event: schema annotates no x-server-owned field")
	}
	sort.Strings(out)
	return out, nil
})

// checkServerOwned reports every server-owned field present in a sender's document.
func checkServerOwned(doc map[string]any) []FieldError {
	var errs []FieldError
	for _, ptr := range ServerOwned() {
		if HasField(doc, ptr) {
			errs = append(errs, FieldError{Field: ptr, Rule: RuleServerField,
				Message: "is set by the server and must be omitted"})
		}
	}
	return errs
}

// HasField reports whether the object path ptr (a JSON pointer of schema property
// names, without escapes) exists in doc.
func HasField(doc map[string]any, ptr string) bool {
	parts := strings.Split(ptr[1:], "/")
	cur := doc
	for i, p := range parts {
		v, ok := cur[p]
		if !ok {
			return false
		}
		if i == len(parts)-1 {
			return true
		}
		if cur, ok = v.(map[string]any); !ok {
			return false
		}
	}
	return false
}
