package ociimage

import (
	"archive/tar"
	"bufio"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/trailkeep/trailkeep/internal/repo"
)

// binaries are the images the Dockerfile and the layout both build.
var binaries = []string{"ingest", "chainer", "query", "exporter", "trailctl"}

const testCommit = "0123456789abcdef0123456789abcdef01234567"

// buildStatic builds every binary the way the Dockerfile does (no cgo, version
// stamped) into a temporary directory.
func buildStatic(t *testing.T, root string) []Binary {
	t.Helper()
	dir := t.TempDir()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	var bins []Binary
	for _, b := range binaries {
		out := filepath.Join(dir, b)
		cmd := exec.Command(goBin, "build", "-trimpath", "-tags", "timetzdata", "-ldflags",
			"-s -w -X github.com/trailkeep/trailkeep/internal/version.Version=v0.0.0-test -X github.com/trailkeep/trailkeep/internal/version.Commit="+testCommit,
			"-o", out, "./cmd/"+b)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b, err, msg)
		}
		bins = append(bins, Binary{Name: b, Path: out})
	}
	return bins
}

func options(root string) Options {
	return Options{
		Version: "v0.0.0-test", Commit: testCommit, Source: "https://github.com/trailkeep/trailkeep",
		Created: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Arch: runtime.GOARCH,
		Passwd: filepath.Join(root, "deploy/image/passwd"), Group: filepath.Join(root, "deploy/image/group"),
		CACerts: "/etc/ssl/certs/ca-certificates.crt",
	}
}

// TestLayout builds the images, writes and reopens the layout, and checks each
// image's configuration and contents, and that its binary runs.
func TestLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds all five static binaries (minutes on a cold cache); make test runs it")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bins := buildStatic(t, root)
	idx, err := Build(bins, options(root))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(bins, options(root))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of the same binaries differ: %s vs %s (the build must be reproducible)", d1, d2)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, idx); err != nil {
		t.Fatal(err)
	}
	opened, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := opened.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(binaries) {
		t.Fatalf("layout holds %d images, want %d", len(im.Manifests), len(binaries))
	}
	for i, desc := range im.Manifests {
		name := desc.Annotations[RefNameAnnotation]
		t.Run(name, func(t *testing.T) {
			if name != binaries[i] {
				t.Fatalf("image %d is named %q, want %q", i, name, binaries[i])
			}
			img, err := opened.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkConfig(t, img, name, options(root))
			files := extract(t, img)
			checkFiles(t, files, name)
			runVersion(t, files[strings.TrimPrefix(BinDir, "/")+"/"+name], name)
		})
	}
}

func checkConfig(t *testing.T, img v1.Image, name string, opt Options) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != User || strings.HasPrefix(c.User, "0") || c.User == "root" {
		t.Errorf("user %q, want %q", c.User, User)
	}
	if want := []string{BinDir + "/" + name}; strings.Join(c.Entrypoint, " ") != want[0] {
		t.Errorf("entrypoint %q, want %q", c.Entrypoint, want)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	for k, v := range Labels(name, opt) {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if c.Labels["org.opencontainers.image.revision"] != testCommit {
		t.Errorf("revision label %q", c.Labels["org.opencontainers.image.revision"])
	}
}

// extracted is a file of the flattened image: contents and tar header.
type extracted struct {
	hdr  *tar.Header
	data []byte
}

func extract(t *testing.T, img v1.Image) map[string]extracted {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]extracted{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = extracted{hdr: h, data: data}
	}
	return files
}

// checkFiles holds the image to its promise: the user, the CA bundle, /tmp, one
// binary — and nothing else (no shell, no package manager).
func checkFiles(t *testing.T, files map[string]extracted, name string) {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
		"tmp", "usr", "usr/local", "usr/local/bin", "usr/local/bin/" + name, "var", "var/lib", "var/lib/trailkeep"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("image files:\n got %q\nwant %q", names, want)
	}
	if !strings.Contains(string(files["etc/passwd"].data), ":65532:65532:") {
		t.Errorf("/etc/passwd lacks the 65532 user:\n%s", files["etc/passwd"].data)
	}
	if m := files["tmp"].hdr.Mode; m&0o1777 != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", m)
	}
	if h := files["var/lib/trailkeep"].hdr; h == nil || h.Uid != 65532 || h.Gid != 65532 || h.Mode&0o777 != 0o700 {
		t.Errorf("/var/lib/trailkeep must be 0700 and owned by 65532 (volumes mounted there inherit it): %+v", h)
	}
	if len(files["etc/ssl/certs/ca-certificates.crt"].data) == 0 {
		t.Error("empty CA bundle")
	}
}

// runVersion writes the extracted binary out, checks it is static, and runs it.
func runVersion(t *testing.T, f extracted, name string) {
	t.Helper()
	if f.hdr == nil {
		t.Fatal("binary missing")
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, f.data, 0o755); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked: an empty base has no loader", name)
		}
	}
	cmd := exec.Command(p, "--version")
	cmd.Env = []string{} // the image has no environment to speak of
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", name, err, out)
	}
	if re := regexp.MustCompile(`^` + name + ` v0\.0\.0-test \(commit ` + testCommit + `,`); !re.Match(out) {
		t.Errorf("%s --version printed %q", name, out)
	}
}

// TestDockerfileMatchesLayout holds the Dockerfile's final stages to what Build
// produces: the same user, binary paths, entrypoints and label keys, one target per
// binary.
func TestDockerfileMatchesLayout(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	stages := map[string][]string{} // stage -> its instructions, continuation lines joined
	var stage, cont string
	sc := bufio.NewScanner(df)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		if f := strings.Fields(line); f[0] == "FROM" && len(f) >= 4 && strings.EqualFold(f[len(f)-2], "AS") {
			stage = f[len(f)-1]
		}
		stages[stage] = append(stages[stage], line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	base := strings.Join(stages["base"], "\n")
	for _, want := range []string{"FROM scratch AS base", "USER " + User, "COPY deploy/image/passwd /etc/passwd",
		"COPY deploy/image/group /etc/group", "/etc/ssl/certs/ca-certificates.crt",
		"COPY --from=build /rootfs/ /", "COPY --from=build --chown=65532:65532 /rootfs-state/ /var/lib/", "ENV PATH=" + BinDir} {
		if !strings.Contains(base, want) {
			t.Errorf("Dockerfile base stage lacks %q", want)
		}
	}
	if !strings.Contains(strings.Join(stages["build"], "\n"), "CGO_ENABLED=0") {
		t.Error("Dockerfile build stage does not build static binaries (CGO_ENABLED=0)")
	}
	for _, b := range binaries {
		t.Run(b, func(t *testing.T) {
			s := strings.Join(stages[b], "\n")
			if s == "" {
				t.Fatalf("Dockerfile has no %q target", b)
			}
			for _, want := range []string{
				"FROM base AS " + b,
				"COPY --from=build /out/" + b + " " + BinDir + "/" + b,
				`ENTRYPOINT ["` + BinDir + "/" + b + `"]`,
			} {
				if !strings.Contains(s, want) {
					t.Errorf("stage %s lacks %q", b, want)
				}
			}
			all := base + "\n" + s
			for k := range Labels(b, Options{}) {
				if !strings.Contains(all, k+"=") {
					t.Errorf("stage %s does not set label %s", b, k)
				}
			}
		})
	}
	for s := range stages {
		if s != "build" && s != "base" && s != "" && !contains(binaries, s) {
			t.Errorf("Dockerfile stage %q is not a binary the layout builds", s)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
