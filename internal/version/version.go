// Package version is what every trailkeep binary answers to --version: the release,
// the commit and the build date, stamped at link time.
//
// The Makefile and the Dockerfile set them with
//
//	-ldflags "-X github.com/trailkeep/trailkeep/internal/version.Version=v0.3.0
//	          -X github.com/trailkeep/trailkeep/internal/version.Commit=$(git rev-parse HEAD)
//	          -X github.com/trailkeep/trailkeep/internal/version.Date=2026-12-02T18:00:00Z"
//
// A plain `go build` leaves them unset; the module version and VCS stamp Go records
// (runtime/debug.ReadBuildInfo) fill the gaps, so `go install` builds still say
// something true.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time with -X; see the package comment.
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info is one binary's build identity.
type Info struct {
	Binary  string
	Version string
	Commit  string
	Date    string
	Go      string
}

// Get returns the build identity of the running binary, named binary.
func Get(binary string) Info {
	in := Info{Binary: binary, Version: Version, Commit: Commit, Date: Date, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && in.Commit == "":
				in.Commit = s.Value
			case s.Key == "vcs.time" && in.Date == "":
				in.Date = s.Value
			}
		}
	}
	for _, f := range []*string{&in.Version, &in.Commit, &in.Date} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return in
}

// String is the one line --version prints.
func (in Info) String() string {
	return fmt.Sprintf("%s %s (commit %s, built %s, %s)", in.Binary, in.Version, in.Commit, in.Date, in.Go)
}
