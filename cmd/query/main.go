// Command query runs trailkeep's query; see internal/app/query for what it does and
// CONFIGURATION.md for the environment it reads.
package main

import (
	"github.com/trailkeep/trailkeep/internal/app/query"
	"github.com/trailkeep/trailkeep/internal/service"
)

func main() {
	service.Main("query", func(c *queryapp.Config) *string { return &c.LogLevel }, queryapp.Run)
}
