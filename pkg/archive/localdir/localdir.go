// Package localdir keeps the WORM archive in a local directory, one file per object
// under the same keys the S3 archive uses, for trailkeep dev. Objects are created
// once (never replaced: an existing key is reported, as S3's If-None-Match is),
// written to a temporary file, fsynced and linked into place, then made read-only.
//
// A directory is not Object Lock: the owner (or root) can still delete or rewrite a
// file. Tampering is detected, not prevented — by the digest chain and checkpoint
// signatures that `trailctl verify --s3 file://DIR` checks.
package localdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trailkeep/trailkeep/pkg/archive"
)

// Dir is an archive directory. It implements archive.Bucket and the archive sink's
// object writes (sink/s3.Objects).
type Dir struct{ root string }

// New opens (creating, mode 0700) the archive directory root.
func New(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("localdir: %w", err)
	}
	return &Dir{root: abs}, nil
}

// Root is the directory.
func (d *Dir) Root() string { return d.root }

// path maps a key to its file, refusing keys that would leave the directory.
func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || !fs.ValidPath(key) {
		return "", fmt.Errorf("localdir: invalid object key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// PutNew stores body under key unless the key exists; existed reports that it did
// (and nothing was written).
func (d *Dir) PutNew(_ context.Context, key string, body []byte) (existed bool, err error) {
	p, err := d.path(key)
	if err != nil {
		return false, err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("localdir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return false, fmt.Errorf("localdir: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return false, fmt.Errorf("localdir: write %s: %w", key, err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		tmp.Close()
		return false, fmt.Errorf("localdir: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("localdir: fsync %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("localdir: %w", err)
	}
	// link(2) fails when the name exists: create-only, atomically.
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return true, nil
		}
		return false, fmt.Errorf("localdir: %w", err)
	}
	return false, syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("localdir: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("localdir: fsync %s: %w", dir, err)
	}
	return nil
}

// List implements archive.Bucket: every key under prefix, in key order.
func (d *Dir) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".put-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			out = append(out, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("localdir: list %s: %w", prefix, err)
	}
	slices.Sort(out)
	return out, nil
}

// Dirs implements archive.Bucket: the keys' "directories" directly under prefix,
// each ending in "/".
func (d *Dir) Dirs(ctx context.Context, prefix string) ([]string, error) {
	keys, err := d.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			if dir := prefix + rest[:i+1]; len(out) == 0 || out[len(out)-1] != dir {
				out = append(out, dir)
			}
		}
	}
	return out, nil
}

// Get implements archive.Bucket; a missing key wraps archive.ErrNotFound.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("localdir: %s: %w", key, archive.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("localdir: %w", err)
	}
	return b, nil
}
