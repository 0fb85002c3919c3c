package chdb

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The pinned engine: the npm package's version, tarball and the registry's SHA-512
// integrity of it (npm view @chdb/lib-linux-x64-gnu@26.5.3 dist.integrity).
const (
	Version   = "26.5.3"
	tarball   = "https://registry.npmjs.org/@chdb/lib-linux-x64-gnu/-/lib-linux-x64-gnu-" + Version + ".tgz"
	integrity = "sha512-fPrLmRt5Moor9yGz4mazbrNje4t7X9KB2mTGkXFWRxRBs2iKy8yh6jx11xsa0Qr3iDFMU/yHqd+bVdYJXu3QaQ=="
)

// LibraryEnv, when set, names a libchdb.so to load instead of the fetched one.
const LibraryEnv = "TRAILKEEP_CHDB_LIBRARY"

// Fetch returns the path of libchdb.so in cache (cache/VERSION/libchdb.so),
// downloading the pinned npm tarball once and refusing it unless its SHA-512 matches
// the pinned integrity. Concurrent callers (parallel test packages, two dev
// instances) wait for one download. Progress goes to progress.
func Fetch(cache string, progress io.Writer) (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", LibraryEnv, err)
		}
		return p, nil
	}
	dir := filepath.Join(cache, Version)
	lib := filepath.Join(dir, "libchdb.so")
	if _, err := os.Stat(lib); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(lib); err == nil {
		return lib, nil // another process fetched it while we waited
	}
	fmt.Fprintf(progress, "fetching the in-process ClickHouse engine (%s, ~130 MB, once) into %s\n", tarball, dir)
	if err := download(lib); err != nil {
		return "", fmt.Errorf("fetch %s: %w", tarball, err)
	}
	return lib, nil
}

// download fetches the tarball to a temporary file, checks its integrity, and only
// then extracts libchdb.so (renamed into place, so a half-written library never
// appears under its name).
func download(lib string) error {
	tmp, err := os.CreateTemp(filepath.Dir(lib), "tarball-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	cl := &http.Client{Timeout: 15 * time.Minute}
	resp, err := cl.Get(tarball)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry answered %s", resp.Status)
	}
	h := sha512.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		return err
	}
	if got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)); got != integrity {
		return fmt.Errorf("integrity mismatch: got %s, pinned %s", got, integrity)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return extract(tmp, "package/libchdb.so", lib)
}

func extract(r io.Reader, name, dst string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s not in the tarball", name)
		}
		if err != nil {
			return err
		}
		if hdr.Name != name {
			continue
		}
		part := dst + ".partial"
		f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(part, dst)
	}
}
