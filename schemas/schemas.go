// Package schemas embeds the versioned JSON Schemas (and, later, the ClickHouse
// DDL) so that every binary validates against exactly the files in this
// directory: the schema files are the single source of truth, the Go types in
// pkg/event are checked against them by a test.
package schemas

import "embed"

// FS holds every schema file, addressed by its path below this directory,
// e.g. "event/v1.schema.json".
//
//go:embed event/*.schema.json
var FS embed.FS

// EventV1 is the path of the canonical event schema, version 1, inside FS.
const EventV1 = "event/v1.schema.json"
