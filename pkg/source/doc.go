// Package source holds one sub-package per sender format (Claude Code hooks,
// CloudEvents). Each maps a decoded payload onto a canonical event document that
// ingest then stamps, validates and canonicalises with package event; adapters never
// set server-only fields and never see other tenants' data.
package source
