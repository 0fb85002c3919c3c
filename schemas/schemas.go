// Package schemas embeds the versioned JSON Schemas and the ClickHouse DDL so that
// every binary validates and migrates with exactly the files in this directory: the
// schema files are the single source of truth, the Go types in pkg/event are checked
// against them by a test.
package schemas

import "embed"

// FS holds every schema file, addressed by its path below this directory,
// e.g. "event/v1.schema.json".
//
//go:embed event/*.schema.json clickhouse
var FS embed.FS

// ClickHouse DDL directories inside FS: numbered migrations (NNNN_name.sql), one
// directory per server generation. Both hold the same columns.
const (
	ClickHouseLegacy = "clickhouse/legacy" // servers before 23.8 (Debian's 18.16)
	ClickHouseModern = "clickhouse/modern" // 23.8 and later
)

// EventV1 is the path of the canonical event schema, version 1, inside FS.
const EventV1 = "event/v1.schema.json"
