package event

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/trailkeep/trailkeep/internal/schemacheck"
	"github.com/trailkeep/trailkeep/schemas"
)

// compiled is the event schema, compiled once from the embedded file.
type compiled struct {
	schema *jsonschema.Schema
	doc    any // the raw schema document, for x-message annotations
	url    string

	// valid is the schema as a yes/no check, several times cheaper than the
	// library's validator; a document it does not accept goes to the library,
	// which decides and names the errors. nil (validErr says why) when the
	// schema uses a keyword schemacheck lacks; a test requires it.
	valid    schemacheck.Check
	validErr error
}

var loadSchema = sync.OnceValues(func() (*compiled, error) {
	raw, err := schemas.FS.ReadFile(schemas.EventV1)
	if err != nil {
		return nil, fmt.Errorf("event: read embedded schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("event: parse schema %s: %w", schemas.EventV1, err)
	}
	id, _ := doc.(map[string]any)["$id"].(string)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // formats (email, uuid, date-time) are rules here, not annotations
	c.UseRegexpEngine(compilePattern)
	if err := c.AddResource(id, doc); err != nil {
		return nil, fmt.Errorf("event: add schema: %w", err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		return nil, fmt.Errorf("event: compile schema: %w", err)
	}
	valid, validErr := schemacheck.Compile(sch)
	return &compiled{schema: sch, doc: doc, url: id, valid: valid, validErr: validErr}, nil
})

// Schema returns the raw JSON Schema document of the canonical event, as
// parsed from schemas/event/v1.schema.json.
func Schema() (any, error) {
	c, err := loadSchema()
	if err != nil {
		return nil, err
	}
	return c.doc, nil
}

// Validate checks a document against the canonical event schema and the
// rules a schema cannot express (timestamp range). It reports every problem,
// not just the first.
func Validate(doc map[string]any) error {
	c, err := loadSchema()
	if err != nil {
		return err
	}
	var errs []FieldError
	if c.valid == nil || !c.valid(doc) {
		if err := c.schema.Validate(doc); err != nil {
			ve, ok := err.(*jsonschema.ValidationError)
			if !ok {
				return fmt.Errorf("event: validate: %w", err)
			}
			c.collect(ve, &errs)
		}
	}
	for _, f := range timeFields {
		s, ok := doc[f].(string)
		if !ok || hasField(errs, "/"+f) {
			continue
		}
		if _, err := ParseTime(s); err != nil {
			errs = append(errs, FieldError{Field: "/" + f, Rule: RuleTimeRange, Limit: MinTime.Format("2006-01-02") + ".." + MaxTime.Format("2006-01-02"), Message: err.Error()})
		}
	}
	if len(errs) > 0 {
		return newValidationError(errs...)
	}
	return nil
}

// timeFields are the top-level fields that hold timestamps (schema
// $defs/timestamp); a test checks this list against the schema.
var timeFields = []string{"occurred_at", "received_at"}

func hasField(errs []FieldError, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

var printer = message.NewPrinter(language.English)

// collect flattens the validator's error tree into one FieldError per
// failing leaf keyword.
func (c *compiled) collect(ve *jsonschema.ValidationError, out *[]FieldError) {
	ptr := instancePointer(ve.InstanceLocation)
	switch k := ve.ErrorKind.(type) {
	case *kind.PropertyNames:
		// jsonschema v6.0.3 reports a wrong InstanceLocation for propertyNames
		// (a sibling's path leaks in). Our schema only uses propertyNames
		// under plain properties/<name> paths, so the schema location names
		// the instance exactly.
		ptr = strings.ReplaceAll(strings.TrimSuffix(schemaFragment(ve.SchemaURL), "/propertyNames"), "/properties/", "/")
		*out = append(*out, FieldError{Field: pointerAppend(ptr, k.Property), Rule: "propertyNames",
			Message: c.annotation(ve.SchemaURL, "pattern", "key must match %s")})
		return
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, FieldError{Field: pointerAppend(ptr, m), Rule: "required", Message: "is required"})
		}
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, FieldError{Field: pointerAppend(ptr, p), Rule: "additionalProperties",
				Message: "is not a field of the v1 event at this place (unknown fields are rejected, not dropped)"})
		}
		return
	}
	if len(ve.Causes) > 0 {
		for _, cause := range ve.Causes {
			c.collect(cause, out)
		}
		return
	}
	*out = append(*out, c.leaf(ve, ptr))
}

func (c *compiled) leaf(ve *jsonschema.ValidationError, ptr string) FieldError {
	fe := FieldError{Field: ptr}
	if kp := ve.ErrorKind.KeywordPath(); len(kp) > 0 {
		fe.Rule = kp[0]
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.Type:
		fe.Limit = strings.Join(k.Want, "|")
		fe.Message = fmt.Sprintf("must be %s, not %s", article(k.Want), k.Got)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		fe.Limit = strings.Join(want, "|")
		fe.Message = "must be one of " + strings.Join(want, ", ")
	case *kind.Const:
		fe.Limit = fmt.Sprint(k.Want)
		fe.Message = fmt.Sprintf("must be %v", k.Want)
	case *kind.Format:
		fe.Limit = k.Want
		fe.Message = formatMessages[k.Want]
		if fe.Message == "" {
			fe.Message = "must be a valid " + k.Want
		}
	case *kind.MaxLength:
		fe.Limit = strconv.Itoa(k.Want)
		fe.Message = fmt.Sprintf("must be at most %d characters (got %d)", k.Want, k.Got)
	case *kind.MinLength:
		fe.Limit = strconv.Itoa(k.Want)
		fe.Message = "must not be empty"
		if k.Want > 1 {
			fe.Message = fmt.Sprintf("must be at least %d characters", k.Want)
		}
	case *kind.Pattern:
		fe.Limit = k.Want
		fe.Message = c.annotation(ve.SchemaURL, "pattern", "must match %s")
	case *kind.MaxProperties:
		fe.Limit = strconv.Itoa(k.Want)
		fe.Message = fmt.Sprintf("at most %d keys (got %d)", k.Want, k.Got)
	case *kind.MinProperties:
		fe.Limit = strconv.Itoa(k.Want)
		fe.Message = c.annotation(ve.SchemaURL, "minProperties", "at least %v keys")
	case *kind.MinItems:
		fe.Limit = strconv.Itoa(k.Want)
		fe.Message = "must not be empty; omit the field instead"
	case *kind.MaxItems:
		fe.Limit = strconv.Itoa(k.Want)
		fe.Message = fmt.Sprintf("at most %d items (got %d)", k.Want, k.Got)
	case *kind.UniqueItems:
		fe.Message = fmt.Sprintf("items %d and %d are equal; items must be unique", k.Duplicates[0], k.Duplicates[1])
	case *kind.Minimum:
		fe.Limit = k.Want.RatString()
		fe.Message = "must be at least " + fe.Limit
	case *kind.Maximum:
		fe.Limit = k.Want.RatString()
		fe.Message = "must be at most " + fe.Limit
	default:
		fe.Message = ve.ErrorKind.LocalizedString(printer)
	}
	return fe
}

var formatMessages = map[string]string{
	"email":     "must be a valid email address",
	"uuid":      "must be a UUID",
	"date-time": "must be an RFC 3339 date-time such as 2026-01-15T09:23:00.5Z",
}

func article(want []string) string {
	parts := make([]string, len(want))
	for i, w := range want {
		switch w {
		case "object", "array", "integer":
			parts[i] = "an " + w
		default:
			parts[i] = "a " + w
		}
	}
	return strings.Join(parts, " or ")
}

// annotation returns the "x-message" of the schema object whose keyword
// failed, so that the human wording of a pattern lives in the schema next to
// the pattern. Without one it falls back to fallback with the keyword's value.
func (c *compiled) annotation(schemaURL, keyword, fallback string) string {
	var node any = c.doc
	if frag := schemaFragment(schemaURL); frag != "" {
		for _, t := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			t, _ = url.PathUnescape(t)
			t = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
			m, _ := node.(map[string]any)
			node = m[t]
		}
	}
	m, _ := node.(map[string]any)
	if msg, ok := m["x-message"].(string); ok {
		return msg
	}
	return fmt.Sprintf(fallback, m[keyword])
}

func schemaFragment(schemaURL string) string {
	_, frag, _ := strings.Cut(schemaURL, "#")
	return frag
}

func instancePointer(loc []string) string {
	var b strings.Builder
	for _, t := range loc {
		b.WriteString(pointerAppend("", t))
	}
	return b.String()
}
