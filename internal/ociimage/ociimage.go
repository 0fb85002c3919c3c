// Package ociimage builds trailkeep's container images without a container engine:
// one OCI image per binary on an empty base, written as an OCI image layout that
// `skopeo copy oci:DIR:ingest docker://REGISTRY/trailkeep/ingest:TAG` or
// `crane push` publishes as is.
//
// Each image holds exactly what the Dockerfile's final stages hold (the two are
// checked against each other by the tests): deploy/image/passwd and group (the
// unprivileged user 65532), the CA bundle, an empty /tmp, the service user's
// state directory /var/lib/trailkeep, and one static binary at
// /usr/local/bin/NAME, which is the entrypoint. One image per binary rather than one
// with all five: a pod then carries only the code it runs — the ingest pod has no
// trailctl able to read every tenant's rows — and each image's digest pins one
// component's release.
//
// The build is reproducible: file times are the build's creation time (from
// SOURCE_DATE_EPOCH or the commit date) and files are written in a fixed order, so
// the same binaries give the same digests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the unprivileged uid:gid every image runs as (deploy/image/passwd).
const User = "65532:65532"

// StateDir is the service user's own directory (secrets, data), mode 0700.
const StateDir = "/var/lib/trailkeep"

// BinDir is where the binary sits inside the image.
const BinDir = "/usr/local/bin"

// RefNameAnnotation names each image in the layout's index (the OCI image-layout
// convention skopeo and crane read).
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Binary is one image to build: the binary's name (image and entrypoint) and the
// path of the static executable to put in it.
type Binary struct {
	Name string
	Path string
}

// Options say what goes into every image besides its binary.
type Options struct {
	// Version, Commit and Created become the OCI labels (and file times).
	Version string
	Commit  string
	Created time.Time
	// Source is the repository URL (org.opencontainers.image.source).
	Source string
	// Passwd, Group and CACerts are the paths of the files for /etc/passwd,
	// /etc/group and /etc/ssl/certs/ca-certificates.crt.
	Passwd, Group, CACerts string
	// Arch is the binaries' GOARCH (the images are linux/Arch).
	Arch string
}

// file is one entry of a layer.
type file struct {
	name string
	mode int64
	dir  bool
	src  string // path to read; empty for a directory
	uid  int    // owner (uid = gid); root unless set
}

// Build returns the index of one image per binary, each annotated with its name.
func Build(bins []Binary, opt Options) (v1.ImageIndex, error) {
	base, err := layer(opt.Created, []file{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, src: opt.Passwd},
		{name: "etc/group", mode: 0o644, src: opt.Group},
		{name: "etc/ssl/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, src: opt.CACerts},
		{name: "tmp/", dir: true, mode: 0o1777},
		// The state directory, owned by the service user: an empty volume mounted
		// here takes this owner, so the non-root init can write secrets into it.
		{name: "var/", dir: true, mode: 0o755},
		{name: "var/lib/", dir: true, mode: 0o755},
		{name: StateDir[1:] + "/", dir: true, mode: 0o700, uid: 65532},
	})
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range bins {
		img, err := image(base, b, opt)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", b.Name, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				Platform:    &v1.Platform{OS: "linux", Architecture: opt.Arch},
				Annotations: map[string]string{RefNameAnnotation: b.Name},
			},
		})
	}
	return idx, nil
}

// WriteLayout writes idx as an OCI image layout in dir (created if missing).
func WriteLayout(dir string, idx v1.ImageIndex) error {
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}

// image is the base layer, b's binary layer and the runtime configuration.
func image(base v1.Layer, b Binary, opt Options) (v1.Image, error) {
	bin, err := layer(opt.Created, []file{
		{name: "usr/", dir: true, mode: 0o755},
		{name: "usr/local/", dir: true, mode: 0o755},
		{name: "usr/local/bin/", dir: true, mode: 0o755},
		{name: path.Join(BinDir[1:], b.Name), mode: 0o755, src: b.Path},
	})
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, bin)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", opt.Arch
	cf.Created = v1.Time{Time: opt.Created}
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{path.Join(BinDir, b.Name)},
		Env:        []string{"PATH=" + BinDir},
		WorkingDir: "/tmp",
		Labels:     Labels(b.Name, opt),
	}
	return mutate.ConfigFile(img, cf)
}

// Labels are the OCI annotations every image carries (the Dockerfile sets the same).
func Labels(name string, opt Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "trailkeep-" + name,
		"org.opencontainers.image.description": "trailkeep " + name + ": tamper-evident audit pipeline for AI coding tools",
		"org.opencontainers.image.version":     opt.Version,
		"org.opencontainers.image.revision":    opt.Commit,
		"org.opencontainers.image.created":     opt.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.source":      opt.Source,
		"org.opencontainers.image.vendor":      "trailkeep",
	}
}

// layer is an uncompressed tar of files (owned by root, times = mtime), gzipped by
// the layer itself.
func layer(mtime time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, ModTime: mtime, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		var data []byte
		if f.dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			var err error
			if data, err = os.ReadFile(f.src); err != nil {
				return nil, err
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
