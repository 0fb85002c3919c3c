package event

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestGoTypesMatchSchema keeps the Go types and the JSON Schema, the single
// source of truth, in step: at every object level the same field names, the
// same JSON types, and schema-required fields exactly where the Go field
// has no omitempty.
func TestGoTypesMatchSchema(t *testing.T) {
	doc, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	root := doc.(map[string]any)
	defs := root["$defs"].(map[string]any)
	compareObject(t, "", root, reflect.TypeOf(Event{}), defs)

	// timeFields lists exactly the top-level timestamp fields.
	var ts []string
	for name, p := range root["properties"].(map[string]any) {
		if ref, _ := p.(map[string]any)["$ref"].(string); ref == "#/$defs/timestamp" {
			ts = append(ts, name)
		}
	}
	sort.Strings(ts)
	want := slices.Clone(timeFields)
	sort.Strings(want)
	if !slices.Equal(ts, want) {
		t.Errorf("timeFields = %v, schema timestamps = %v", want, ts)
	}
}

func resolve(s map[string]any, defs map[string]any) map[string]any {
	if ref, ok := s["$ref"].(string); ok {
		return defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
	}
	return s
}

func compareObject(t *testing.T, path string, sch map[string]any, typ reflect.Type, defs map[string]any) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	props, _ := sch["properties"].(map[string]any)
	required := map[string]bool{}
	if r, ok := sch["required"].([]any); ok {
		for _, n := range r {
			required[n.(string)] = true
		}
	}
	fields := map[string]reflect.StructField{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = f
	}
	for name := range props {
		if _, ok := fields[name]; !ok {
			t.Errorf("%s/%s: in the schema but not in Go type %s", path, name, typ)
		}
	}
	for name, f := range fields {
		p, ok := props[name]
		if !ok {
			t.Errorf("%s/%s: in Go type %s but not in the schema", path, name, typ)
			continue
		}
		omitempty := strings.Contains(f.Tag.Get("json"), ",omitempty")
		if required[name] == omitempty {
			t.Errorf("%s/%s: schema required=%v but Go omitempty=%v", path, name, required[name], omitempty)
		}
		compareValue(t, path+"/"+name, resolve(p.(map[string]any), defs), f.Type, defs)
	}
}

func compareValue(t *testing.T, path string, sch map[string]any, typ reflect.Type, defs map[string]any) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	jsonType, _ := sch["type"].(string)
	if _, isConst := sch["const"]; isConst {
		jsonType = "integer"
	}
	if _, isEnum := sch["enum"]; isEnum {
		jsonType = "string"
	}
	if typ == reflect.TypeOf(Time{}) {
		if sch["format"] != "date-time" {
			t.Errorf("%s: Go Time but schema is not a date-time", path)
		}
		return
	}
	switch typ.Kind() {
	case reflect.String:
		if jsonType != "string" {
			t.Errorf("%s: Go string, schema %v", path, sch["type"])
		}
	case reflect.Int, reflect.Int64:
		if jsonType != "integer" {
			t.Errorf("%s: Go integer, schema %v", path, sch["type"])
		}
	case reflect.Bool:
		if jsonType != "boolean" {
			t.Errorf("%s: Go bool, schema %v", path, sch["type"])
		}
	case reflect.Slice:
		if jsonType != "array" {
			t.Errorf("%s: Go slice, schema %v", path, sch["type"])
			return
		}
		compareValue(t, path+"/items", resolve(sch["items"].(map[string]any), defs), typ.Elem(), defs)
	case reflect.Map:
		if jsonType != "object" || sch["properties"] != nil {
			t.Errorf("%s: Go map, schema is not an open object", path)
		}
	case reflect.Struct:
		if jsonType != "object" || sch["additionalProperties"] != false {
			t.Errorf("%s: Go struct, schema is not a closed object", path)
			return
		}
		compareObject(t, path, sch, typ, defs)
	default:
		t.Errorf("%s: unexpected Go kind %s", path, typ.Kind())
	}
}
