package event

import (
	"fmt"
	"sort"
	"strings"
)

// Rules that fail before or outside the JSON Schema. Schema failures use the
// name of the schema keyword (required, type, maxLength, pattern, format, ...).
const (
	RuleSyntax       = "json"          // not well-formed JSON
	RuleObject       = "object"        // top level is not a JSON object
	RuleUTF8         = "utf8"          // invalid UTF-8 or a lone UTF-16 surrogate
	RuleDuplicateKey = "duplicate_key" // the same key twice in one object
	RuleNUL          = "nul"           // U+0000 inside a string
	RuleNumber       = "number"        // a number JCS cannot represent faithfully
	RuleMaxDepth     = "max_depth"     // nesting deeper than Limits.MaxDepth
	RuleMaxBytes     = "max_bytes"     // larger than Limits.MaxEventBytes
	RuleTimeRange    = "time_range"    // a timestamp outside [MinTime, MaxTime)
	RuleServerField  = "server_field"  // a field only the server may set
)

// FieldError is one reason an event was rejected.
type FieldError struct {
	// Field is the RFC 6901 JSON pointer of the offending value; "" is the
	// whole document.
	Field string `json:"field"`
	// Rule is the rule that failed: a JSON Schema keyword or one of the Rule
	// constants.
	Rule string `json:"rule"`
	// Limit is the bound or pattern the rule enforces, when it has one.
	Limit string `json:"limit,omitempty"`
	// Message says in plain words what is wrong and what is allowed.
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	f := e.Field
	if f == "" {
		f = "/"
	}
	return f + ": " + e.Message
}

// ValidationError lists every problem found in one event, sorted by field.
// HTTP handlers render Errors as the JSON body of a 4xx answer.
type ValidationError struct {
	Errors []FieldError `json:"errors"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return "invalid event: " + strings.Join(parts, "; ")
}

func newValidationError(errs ...FieldError) *ValidationError {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].Field != errs[j].Field {
			return errs[i].Field < errs[j].Field
		}
		return errs[i].Rule < errs[j].Rule
	})
	return &ValidationError{Errors: errs}
}

func fieldErr(field, rule, limit, format string, args ...any) *ValidationError {
	return newValidationError(FieldError{Field: field, Rule: rule, Limit: limit, Message: fmt.Sprintf(format, args...)})
}

// pointerAppend appends one reference token to a JSON pointer (RFC 6901).
func pointerAppend(ptr, token string) string {
	if strings.ContainsAny(token, "~/") {
		token = strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
	}
	return ptr + "/" + token
}

// clip shortens s for inclusion in a message.
func clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
