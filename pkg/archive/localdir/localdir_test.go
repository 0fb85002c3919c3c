package localdir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trailkeep/trailkeep/pkg/archive"
)

func TestPutNewListDirsGet(t *testing.T) {
	ctx := context.Background()
	d, err := New(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p/0/digests/2026-12-02/a.json", "p/0/digests/2026-12-03/b.json", "p/1/x", "q"} {
		if existed, err := d.PutNew(ctx, k, []byte(k)); err != nil || existed {
			t.Fatalf("PutNew(%s) = %v, %v", k, existed, err)
		}
	}
	t.Run("create-only", func(t *testing.T) {
		existed, err := d.PutNew(ctx, "q", []byte("other"))
		if err != nil || !existed {
			t.Fatalf("second PutNew = %v, %v; want existed", existed, err)
		}
		if b, _ := d.Get(ctx, "q"); string(b) != "q" {
			t.Fatalf("existing object rewritten: %q", b)
		}
		if fi, err := os.Stat(filepath.Join(d.Root(), "q")); err != nil || fi.Mode().Perm() != 0o444 {
			t.Fatalf("object mode = %v, %v; want read-only", fi.Mode(), err)
		}
	})
	t.Run("list and dirs", func(t *testing.T) {
		keys, err := d.List(ctx, "p/0/")
		if err != nil || !slices.Equal(keys, []string{"p/0/digests/2026-12-02/a.json", "p/0/digests/2026-12-03/b.json"}) {
			t.Fatalf("List = %v, %v", keys, err)
		}
		dirs, err := d.Dirs(ctx, "p/0/digests/")
		if err != nil || !slices.Equal(dirs, []string{"p/0/digests/2026-12-02/", "p/0/digests/2026-12-03/"}) {
			t.Fatalf("Dirs = %v, %v", dirs, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := d.Get(ctx, "nope"); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("Get(missing) = %v; want ErrNotFound", err)
		}
	})
	for _, bad := range []string{"", "/etc/passwd", "../escape", "a/../../b", `a\b`} {
		t.Run("invalid key "+bad, func(t *testing.T) {
			if _, err := d.PutNew(ctx, bad, nil); err == nil {
				t.Fatalf("PutNew(%q) accepted", bad)
			}
			if _, err := d.Get(ctx, bad); err == nil {
				t.Fatalf("Get(%q) accepted", bad)
			}
		})
	}
}
