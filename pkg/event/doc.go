// Package event defines trailkeep's canonical audit event (schema version 1),
// validates it against the JSON Schema in schemas/event/v1.schema.json and
// computes its canonical bytes (RFC 8785, JSON Canonicalization Scheme).
//
// The canonical bytes are what the chain hashes, what ClickHouse stores and
// what every sink exports. They are computed exactly once, at ingest, by
// [Canonicalize]; everything downstream carries them verbatim and never
// re-encodes an event (ARCHITECTURE.md, invariant 5).
//
// # Pipeline
//
//	raw bytes ──Decode──► document (map[string]any) ──[ingest: Stamp]──►
//	  Canonicalize: schema validation, timestamp normalisation, RFC 8785 ──► (*Event, canonical bytes)
//
// Validation runs the schema as a check compiled from it (internal/schemacheck),
// which allocates nothing for a valid event; a document it does not accept goes to
// the JSON Schema library, which decides and names every error, so the errors and
// the authority are the library's.
//
// [Decode] is strict where JCS cannot be faithful: it rejects invalid UTF-8,
// lone UTF-16 surrogates, duplicate object keys, U+0000 in strings, numbers that
// an IEEE 754 double cannot hold exactly enough (integers beyond ±(2^53−1),
// overflowing or underflowing values), nesting deeper than [Limits.MaxDepth]
// and input larger than [Limits.MaxEventBytes].
//
// # Limits
//
// Structural limits live in [Limits] (defaults in [DefaultLimits]): 64 KiB per
// event, 16 levels of nesting. Field limits live in the schema and are the
// single source of truth: identifiers and short strings 1–256 characters
// without control characters, free text up to 1 KiB (result.reason) or 4 KiB
// (change.diff_summary), metadata at most 64 keys named
// [A-Za-z0-9][A-Za-z0-9_.:-]{0,63} with scalar values (strings up to 8 KiB),
// at most 32 targets, 64 changed fields, 16 compliance tags, 64 redactions.
// Empty optional strings, objects and arrays are rejected (omit the field),
// so that one meaning has exactly one canonical encoding.
// Timestamps are RFC 3339 between 1970-01-01 and 2262-04-11 (the range of a
// nanosecond DateTime64) and are normalised to UTC with exactly nine
// fractional digits, e.g. 2026-01-15T09:23:00.000000000Z.
//
// # Errors
//
// Every rejection is a [*ValidationError] holding one [FieldError] per
// problem; each names the JSON pointer of the field, the rule that failed and
// its limit, e.g. "/metadata: at most 64 keys" or
// "/actor/email: must be a valid email address".
package event
