// Command ingest runs trailkeep's ingest; see internal/app/ingest for what it does and
// CONFIGURATION.md for the environment it reads.
package main

import (
	"github.com/trailkeep/trailkeep/internal/app/ingest"
	"github.com/trailkeep/trailkeep/internal/service"
)

func main() {
	service.Main("ingest", func(c *ingestapp.Config) *string { return &c.LogLevel }, ingestapp.Run)
}
