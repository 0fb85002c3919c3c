package cloudevents

import (
	"errors"
	"testing"

	"github.com/trailkeep/trailkeep/pkg/event"
)

// TestJSONFormatRules holds Map to the CloudEvents JSON event format (§2.2 null is
// unset, §3 attribute types) and to the core spec's constraints on subject,
// datacontenttype, dataschema and source.
func TestJSONFormatRules(t *testing.T) {
	base := func(mut func(ce map[string]any)) map[string]any {
		ce := map[string]any{"specversion": "1.0", "type": "skill.updated", "source": "urn:reg", "id": "1",
			"data": map[string]any{"actor": map[string]any{"type": "user", "id": "u"}, "resource": map[string]any{"type": "skill", "id": "s1"}}}
		mut(ce)
		return ce
	}
	for _, tc := range []struct {
		name  string
		mut   func(ce map[string]any)
		field string // "" = accepted
	}{
		{"null subject is unset", func(ce map[string]any) { ce["subject"] = nil }, ""},
		{"null time is unset", func(ce map[string]any) { ce["time"] = nil }, ""},
		{"null extension is unset", func(ce map[string]any) { ce["traceparent"] = nil }, ""},
		{"null datacontenttype is unset", func(ce map[string]any) { ce["datacontenttype"] = nil }, ""},
		{"null id is missing", func(ce map[string]any) { ce["id"] = nil }, "/id"},
		{"empty subject", func(ce map[string]any) { ce["subject"] = "" }, "/subject"},
		{"empty datacontenttype", func(ce map[string]any) { ce["datacontenttype"] = "" }, "/datacontenttype"},
		{"empty dataschema", func(ce map[string]any) { ce["dataschema"] = "" }, "/dataschema"},
		{"relative dataschema", func(ce map[string]any) { ce["dataschema"] = "schemas/skill.json" }, "/dataschema"},
		{"absolute dataschema", func(ce map[string]any) { ce["dataschema"] = "https://schemas.acme.example/skill.json" }, ""},
		{"source with a bad escape", func(ce map[string]any) { ce["source"] = "https://reg.example/%zz" }, "/source"},
		{"relative source is a URI-reference", func(ce map[string]any) { ce["source"] = "/registry/skills" }, ""},
		{"empty source", func(ce map[string]any) { ce["source"] = "" }, "/source"},
		{"numeric subject", func(ce map[string]any) { ce["subject"] = 7.0 }, "/subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := canonical(t, base(tc.mut))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *event.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err %v, want a validation error at %s", err, tc.field)
			}
			found := false
			for _, fe := range ve.Errors {
				found = found || fe.Field == tc.field
			}
			if !found {
				t.Errorf("errors %v do not name %s", ve.Errors, tc.field)
			}
		})
	}
}
