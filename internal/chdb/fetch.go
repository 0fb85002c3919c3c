package chdb

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/trailkeep/trailkeep/internal/npmfetch"
)

// Version is the pinned engine: the npm package's version, checked against the
// registry's SHA-512 integrity of its tarball (npm view
// @chdb/lib-linux-x64-gnu@26.5.3 dist.integrity).
const Version = "26.5.3"

var engine = npmfetch.Package{Name: "@chdb/lib-linux-x64-gnu", Version: Version,
	Integrity: "sha512-fPrLmRt5Moor9yGz4mazbrNje4t7X9KB2mTGkXFWRxRBs2iKy8yh6jx11xsa0Qr3iDFMU/yHqd+bVdYJXu3QaQ=="}

// LibraryEnv, when set, names a libchdb.so to load instead of the fetched one.
const LibraryEnv = "TRAILKEEP_CHDB_LIBRARY"

// Fetch returns the path of libchdb.so in cache (cache/VERSION/libchdb.so),
// downloading the pinned npm tarball once (~130 MB) and refusing it unless its
// SHA-512 matches the pinned integrity. Concurrent callers (parallel test packages,
// two dev instances) wait for one download. Progress goes to progress.
func Fetch(cache string, progress io.Writer) (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", LibraryEnv, err)
		}
		return p, nil
	}
	lib := filepath.Join(cache, Version, "libchdb.so")
	if err := npmfetch.File(engine, "package/libchdb.so", lib, progress); err != nil {
		return "", fmt.Errorf("the in-process ClickHouse engine: %w", err)
	}
	return lib, nil
}
