package npmfetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tgz(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func integrity(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestFile(t *testing.T) {
	pkg := tgz(t, map[string]string{"package/lib.js": "hello", "package/README": "x"})
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path != "/@scope/lib/-/lib-1.2.3.tgz" {
			http.NotFound(w, r)
			return
		}
		w.Write(pkg)
	}))
	defer srv.Close()
	registry = srv.URL
	defer func() { registry = "https://registry.npmjs.org" }()
	good := Package{Name: "@scope/lib", Version: "1.2.3", Integrity: integrity(pkg)}

	cases := []struct {
		name    string
		p       Package
		member  string
		wantErr string
	}{
		{"tampered tarball", Package{Name: good.Name, Version: good.Version, Integrity: integrity([]byte("other"))}, "package/lib.js", "integrity mismatch"},
		{"missing member", good, "package/none.js", "not in the tarball"},
		{"unknown version", Package{Name: good.Name, Version: "9.9.9", Integrity: good.Integrity}, "package/lib.js", "404"},
		{"fetched", good, "package/lib.js", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "v", "lib.js")
			err := File(c.p, c.member, dst, io.Discard)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if _, err := os.Stat(dst); err == nil {
					t.Fatalf("%s was written although the fetch failed", dst)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(dst); err != nil || string(b) != "hello" {
				t.Fatalf("extracted %q (%v)", b, err)
			}
			before := hits
			if err := File(c.p, c.member, dst, io.Discard); err != nil || hits != before {
				t.Fatalf("second call: err %v, %d more downloads; want none", err, hits-before)
			}
		})
	}
}
