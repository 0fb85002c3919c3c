// Package schemacheck turns a schema compiled by santhosh-tekuri/jsonschema into
// a yes/no check that is several times cheaper than the library's validator.
//
// The library's validator is general: for every value it allocates the state
// that unevaluatedProperties, dynamic references and error reporting need. For
// a document that is valid, none of that is used. A [Check] walks the document
// once, against the keywords the schema actually has, and allocates nothing.
//
// A Check only says "valid": when it returns false the document is invalid or
// holds a value the Check does not decide (a Go type other than the ones a JSON
// decoder produces, or an array too long for its uniqueItems scan), and the
// caller runs the library's validator, which is the authority and reports the
// errors. So the Check must never accept what the library refuses; a
// differential test holds it to that, and to accepting everything the library
// accepts among decoded documents.
//
// The Check reads the library's compiled [jsonschema.Schema], so the schema's
// meaning ($ref resolution, drafts, formats, patterns) is the library's own.
// [Compile] refuses a schema that uses a keyword this package does not
// implement, naming the keyword and where it is, instead of ignoring it.
package schemacheck

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Check reports whether v is valid against the schema it was compiled from.
// false means invalid or not decided here; see the package comment.
type Check func(v any) bool

// UnsupportedError is returned by [Compile] for a schema that uses a keyword
// a Check does not implement. Validate such documents with the library alone,
// or implement the keyword here (with its differential test).
type UnsupportedError struct {
	Location string // the schema's location, as the library names it
	Keyword  string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("schemacheck: %s uses %s, which schemacheck does not implement", e.Location, e.Keyword)
}

// maxExact is the largest integer up to which every integer is a float64: a
// bound or constant within it compares with a float64 exactly as the library's
// rational arithmetic does.
const maxExact = 1 << 53

// maxUniqueScan bounds the pairwise uniqueItems scan; a longer array is left
// to the library, which hashes.
const maxUniqueScan = 64

// node is one compiled schema. Pointers between nodes follow the library's, so
// a recursive schema compiles to a cyclic graph.
type node struct {
	boolean *bool // a boolean schema
	ref     *node

	types   jsonTypes
	consts  []any // const (one value) or enum; nil when neither
	hasEnum bool
	format  *jsonschema.Format

	// object
	minProps, maxProps int // -1 when absent
	required           []string
	props              map[string]*node
	closed             []property // see validClosed; nil when it does not apply
	noAdditional       bool
	additional         *node
	propertyNames      *node

	// array
	minItems, maxItems int
	unique             bool
	items              *node

	// string
	minLen, maxLen int
	pattern        jsonschema.Regexp

	// number
	hasMin, hasMax bool
	min, max       float64
}

// Compile returns the Check of s.
func Compile(s *jsonschema.Schema) (Check, error) {
	c := compiler{nodes: map[*jsonschema.Schema]*node{}}
	n, err := c.compile(s)
	if err != nil {
		return nil, err
	}
	return n.valid, nil
}

type compiler struct {
	nodes map[*jsonschema.Schema]*node
}

func (c *compiler) compile(s *jsonschema.Schema) (*node, error) {
	if s == nil {
		return nil, nil
	}
	if n, ok := c.nodes[s]; ok {
		return n, nil
	}
	n := &node{minProps: -1, maxProps: -1, minItems: -1, maxItems: -1, minLen: -1, maxLen: -1}
	c.nodes[s] = n
	if err := unsupported(s); err != nil {
		return nil, err
	}
	if s.Bool != nil {
		n.boolean = s.Bool
		return n, nil
	}
	steps := []func(*jsonschema.Schema, *node) error{c.general, c.object, c.array, scalar}
	for _, step := range steps {
		if err := step(s, n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// unsupported names the first keyword of s that a Check does not implement.
func unsupported(s *jsonschema.Schema) error {
	if s.DraftVersion != 0 && s.DraftVersion < 2020 {
		return &UnsupportedError{s.Location, fmt.Sprintf("draft %d", s.DraftVersion)}
	}
	for _, k := range []struct {
		kw   string
		used bool
	}{
		{"$recursiveRef", s.RecursiveRef != nil},
		{"$dynamicRef", s.DynamicRef != nil},
		{"not", s.Not != nil},
		{"allOf", len(s.AllOf) > 0},
		{"anyOf", len(s.AnyOf) > 0},
		{"oneOf", len(s.OneOf) > 0},
		{"if/then/else", s.If != nil || s.Then != nil || s.Else != nil},
		{"patternProperties", len(s.PatternProperties) > 0},
		{"dependencies", len(s.Dependencies) > 0},
		{"dependentRequired", len(s.DependentRequired) > 0},
		{"dependentSchemas", len(s.DependentSchemas) > 0},
		{"unevaluatedProperties", s.UnevaluatedProperties != nil},
		{"contains", s.Contains != nil},
		{"prefixItems", len(s.PrefixItems) > 0},
		{"items/additionalItems before draft 2020", s.Items != nil || s.AdditionalItems != nil},
		{"unevaluatedItems", s.UnevaluatedItems != nil},
		{"contentEncoding/contentMediaType/contentSchema", s.ContentEncoding != nil || s.ContentMediaType != nil || s.ContentSchema != nil},
		{"exclusiveMinimum", s.ExclusiveMinimum != nil},
		{"exclusiveMaximum", s.ExclusiveMaximum != nil},
		{"multipleOf", s.MultipleOf != nil},
		{"a vocabulary extension", len(s.Extensions) > 0},
	} {
		if k.used {
			return &UnsupportedError{s.Location, k.kw}
		}
	}
	return nil
}

// general compiles the keywords that apply to every type.
func (c *compiler) general(s *jsonschema.Schema, n *node) error {
	var err error
	if n.ref, err = c.compile(s.Ref); err != nil {
		return err
	}
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			n.types |= typeNamed(t)
		}
	}
	if s.Const != nil {
		v, err := constant(*s.Const, s.Location)
		if err != nil {
			return err
		}
		n.consts = []any{v}
	}
	if s.Enum != nil {
		if n.consts != nil {
			return &UnsupportedError{s.Location, "const beside enum"}
		}
		n.hasEnum = true
		n.consts = []any{}
		for _, e := range s.Enum.Values {
			v, err := constant(e, s.Location)
			if err != nil {
				return err
			}
			n.consts = append(n.consts, v)
		}
	}
	n.format = s.Format
	return nil
}

func (c *compiler) object(s *jsonschema.Schema, n *node) error {
	n.minProps, n.maxProps = optInt(s.MinProperties), optInt(s.MaxProperties)
	n.required = s.Required
	if len(s.Properties) > 0 {
		n.props = make(map[string]*node, len(s.Properties))
		for name, ps := range s.Properties {
			pn, err := c.compile(ps)
			if err != nil {
				return err
			}
			n.props[name] = pn
		}
	}
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		n.noAdditional = !a
	case *jsonschema.Schema:
		an, err := c.compile(a)
		if err != nil {
			return err
		}
		n.additional = an
	default:
		return &UnsupportedError{s.Location, fmt.Sprintf("additionalProperties of type %T", a)}
	}
	var err error
	if n.propertyNames, err = c.compile(s.PropertyNames); err != nil {
		return err
	}
	n.closed = closedProperties(n)
	return nil
}

// property is one entry of a closed object's property list.
type property struct {
	name     string
	node     *node
	required bool
}

// closedProperties lists the properties of an object that admits no others and
// whose required names are all among them, in name order; nil for any other
// object. For such an object every member must be one of the properties, so
// validObject can look the properties up instead of iterating the map.
func closedProperties(n *node) []property {
	if !n.noAdditional || n.propertyNames != nil || len(n.props) == 0 {
		return nil
	}
	req := make(map[string]bool, len(n.required))
	for _, r := range n.required {
		if _, ok := n.props[r]; !ok {
			return nil
		}
		req[r] = true
	}
	list := make([]property, 0, len(n.props))
	for name, pn := range n.props {
		list = append(list, property{name, pn, req[name]})
	}
	slices.SortFunc(list, func(a, b property) int { return strings.Compare(a.name, b.name) })
	return list
}

func (c *compiler) array(s *jsonschema.Schema, n *node) error {
	n.minItems, n.maxItems = optInt(s.MinItems), optInt(s.MaxItems)
	n.unique = s.UniqueItems
	var err error
	n.items, err = c.compile(s.Items2020)
	return err
}

func scalar(s *jsonschema.Schema, n *node) error {
	n.minLen, n.maxLen = optInt(s.MinLength), optInt(s.MaxLength)
	n.pattern = s.Pattern
	var err error
	if s.Minimum != nil {
		n.hasMin = true
		if n.min, err = exactBound(s.Minimum, s.Location, "minimum"); err != nil {
			return err
		}
	}
	if s.Maximum != nil {
		n.hasMax = true
		if n.max, err = exactBound(s.Maximum, s.Location, "maximum"); err != nil {
			return err
		}
	}
	return nil
}

// exactBound is r as a float64 when every float64 compares with it as with r:
// an integer of at most 2^53 in magnitude. A float64's shortest decimal form,
// which the library compares, then orders against r exactly as the float does.
func exactBound(r *big.Rat, loc, kw string) (float64, error) {
	if !r.IsInt() || r.Num().CmpAbs(big.NewInt(maxExact)) > 0 {
		return 0, &UnsupportedError{loc, kw + " " + r.RatString() + " (only integers up to 2^53 are compared exactly)"}
	}
	f, _ := r.Float64()
	return f, nil
}

// constant converts a const or enum value of the schema document (numbers are
// json.Number there) to the form a decoded instance has, so that == compares.
func constant(v any, loc string) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case interface{ String() string }: // json.Number
		r, ok := new(big.Rat).SetString(v.String())
		if !ok {
			return nil, &UnsupportedError{loc, "const/enum number " + v.String()}
		}
		return exactBound(r, loc, "const/enum number")
	default:
		return nil, &UnsupportedError{loc, fmt.Sprintf("const/enum value of type %T", v)}
	}
}

func optInt(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// jsonTypes is a set of JSON Schema type names.
type jsonTypes uint8

const (
	tNull jsonTypes = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

func typeNamed(name string) jsonTypes {
	switch name {
	case "null":
		return tNull
	case "boolean":
		return tBoolean
	case "number":
		return tNumber
	case "integer":
		return tInteger
	case "string":
		return tString
	case "array":
		return tArray
	case "object":
		return tObject
	}
	return 0
}

// valid is the Check. The types it decides are those a JSON decoder produces:
// nil, bool, float64, string, []any and map[string]any.
func (n *node) valid(v any) bool {
	if n.boolean != nil {
		return *n.boolean
	}
	var t jsonTypes
	switch x := v.(type) {
	case nil:
		t = tNull
	case bool:
		t = tBoolean
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
		t = tNumber
		if x == math.Trunc(x) {
			t |= tInteger // the library's isInteger, for a float64
		}
	case string:
		t = tString
	case []any:
		t = tArray
	case map[string]any:
		t = tObject
	default:
		return false // not decided here
	}
	if n.types != 0 && n.types&t == 0 {
		return false
	}
	if n.consts != nil && !n.isConst(v) {
		return false
	}
	if n.format != nil && n.format.Validate(v) != nil {
		return false
	}
	if n.ref != nil && !n.ref.valid(v) {
		return false
	}
	switch x := v.(type) {
	case map[string]any:
		return n.validObject(x)
	case []any:
		return n.validArray(x)
	case string:
		return n.validString(x)
	case float64:
		return (!n.hasMin || x >= n.min) && (!n.hasMax || x <= n.max)
	}
	return true
}

func (n *node) isConst(v any) bool {
	for _, c := range n.consts {
		if v == c { // scalars only: constant() admits no arrays or objects
			return true
		}
	}
	return false
}

func (n *node) validObject(obj map[string]any) bool {
	if n.minProps >= 0 && len(obj) < n.minProps || n.maxProps >= 0 && len(obj) > n.maxProps {
		return false
	}
	if n.closed != nil {
		return n.validClosed(obj)
	}
	for _, r := range n.required {
		if _, ok := obj[r]; !ok {
			return false
		}
	}
	for k, v := range obj {
		if p, ok := n.props[k]; ok {
			if !p.valid(v) {
				return false
			}
		} else if n.noAdditional || n.additional != nil && !n.additional.valid(v) {
			return false
		}
		if n.propertyNames != nil && !n.propertyNames.valid(k) {
			return false
		}
	}
	return true
}

// validClosed is validObject for an object with a closed property list: each
// property is looked up once, which covers required; a member that is none of
// them is what makes the count of those found fall short of the map's size.
// Iterating the map instead cost an iterator step per member on top of the same
// lookups, and the required names were looked up a second time.
func (n *node) validClosed(obj map[string]any) bool {
	found := 0
	for i := range n.closed {
		p := &n.closed[i]
		v, ok := obj[p.name]
		if !ok {
			if p.required {
				return false
			}
			continue
		}
		if !p.node.valid(v) {
			return false
		}
		found++
	}
	return found == len(obj)
}

func (n *node) validArray(arr []any) bool {
	if n.minItems >= 0 && len(arr) < n.minItems || n.maxItems >= 0 && len(arr) > n.maxItems {
		return false
	}
	if n.unique && !distinct(arr) {
		return false
	}
	if n.items != nil {
		for _, v := range arr {
			if !n.items.valid(v) {
				return false
			}
		}
	}
	return true
}

func (n *node) validString(s string) bool {
	if n.minLen >= 0 || n.maxLen >= 0 {
		l := utf8.RuneCountInString(s)
		if n.minLen >= 0 && l < n.minLen || n.maxLen >= 0 && l > n.maxLen {
			return false
		}
	}
	return n.pattern == nil || n.pattern.MatchString(s)
}

// distinct reports whether no two items are equal as JSON values; false also
// for an array longer than maxUniqueScan, which is left to the library.
func distinct(arr []any) bool {
	if len(arr) > maxUniqueScan {
		return false
	}
	for i := 1; i < len(arr); i++ {
		for j := 0; j < i; j++ {
			if eq, ok := equal(arr[i], arr[j]); eq || !ok {
				return false
			}
		}
	}
	return true
}

// equal is JSON equality of two decoded values; ok is false for a type the
// decoder does not produce. Two float64 are equal as JSON numbers exactly when
// they are equal as floats: each has one shortest decimal form.
func equal(a, b any) (eq, ok bool) {
	switch a := a.(type) {
	case nil, bool, string, float64:
		switch b.(type) {
		case nil, bool, string, float64:
			return a == b, true
		}
		return false, known(b)
	case []any:
		bb, isArr := b.([]any)
		if !isArr || len(a) != len(bb) {
			return false, known(b)
		}
		for i := range a {
			if eq, ok := equal(a[i], bb[i]); !eq || !ok {
				return false, ok
			}
		}
		return true, true
	case map[string]any:
		bb, isObj := b.(map[string]any)
		if !isObj || len(a) != len(bb) {
			return false, known(b)
		}
		for k, av := range a {
			bv, has := bb[k]
			if !has {
				return false, true
			}
			if eq, ok := equal(av, bv); !eq || !ok {
				return false, ok
			}
		}
		return true, true
	}
	return false, false
}

// known reports whether v is of a type the decoder produces (at its top).
func known(v any) bool {
	switch v.(type) {
	case nil, bool, string, float64, []any, map[string]any:
		return true
	}
	return false
}
