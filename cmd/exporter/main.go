// Command exporter runs trailkeep's exporter; see internal/app/exporter for what it does and
// CONFIGURATION.md for the environment it reads.
package main

import (
	"github.com/trailkeep/trailkeep/internal/app/exporter"
	"github.com/trailkeep/trailkeep/internal/service"
)

func main() {
	service.Main("exporter", func(c *exporterapp.Config) *string { return &c.LogLevel }, exporterapp.Run)
}
