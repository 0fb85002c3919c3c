// Command chainer runs trailkeep's chainer; see internal/app/chainer for what it does and
// CONFIGURATION.md for the environment it reads.
package main

import (
	"github.com/trailkeep/trailkeep/internal/app/chainer"
	"github.com/trailkeep/trailkeep/internal/service"
)

func main() {
	service.Main("chainer", func(c *chainerapp.Config) *string { return &c.LogLevel }, chainerapp.Run)
}
