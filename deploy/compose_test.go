package deploy

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/trailkeep/trailkeep/internal/configref"
	"github.com/trailkeep/trailkeep/internal/repo"
)

// composeRoles say what each service of docker-compose.yml is: the binary it runs
// (empty for third-party servers) and whether it runs until stopped.
var composeRoles = map[string]struct {
	binary   string
	longRun  bool
	imageFor string // third-party image repository it must use
}{
	"kafka":      {longRun: true, imageFor: "apache/kafka"},
	"clickhouse": {longRun: true, imageFor: "clickhouse/clickhouse-server"},
	"s3":         {longRun: true, imageFor: "versity/versitygw"},
	"init":       {binary: "trailctl"},
	"ingest":     {binary: "ingest", longRun: true},
	"chainer":    {binary: "chainer", longRun: true},
	"query":      {binary: "query", longRun: true},
	"exporter":   {binary: "exporter", longRun: true},
	"trailctl":   {binary: "trailctl"},
}

// sdkEnv are variables a binary reads through a library rather than its Config: the
// AWS SDK's default credential chain (trailctl's S3 access).
var sdkEnv = map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_REGION": true}

// listenVar is each service's HTTP listen variable (probes, published ports).
var listenVar = map[string]string{
	"ingest": "TRAILKEEP_INGEST_ADDR", "chainer": "TRAILKEEP_CHAINER_ADDR",
	"query": "TRAILKEEP_QUERY_ADDR", "exporter": "TRAILKEEP_EXPORTER_ADDR",
}

func loadCompose(t *testing.T, root string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(nil), // the defaults a fresh machine gets, not this shell's
		cli.WithProfiles([]string{"tools"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go rejects docker-compose.yml: %v", err)
	}
	return p
}

func TestCompose(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	p := loadCompose(t, root)
	vars, err := configref.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	initFiles := trailctlInitFiles(t, root)
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	var want []string
	for n := range composeRoles {
		want = append(want, n)
	}
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("services %v, want %v", names, want)
	}
	for _, name := range names {
		s := p.Services[name]
		role := composeRoles[name]
		t.Run(name, func(t *testing.T) {
			checkImage(t, s, role.binary, role.imageFor)
			if role.longRun {
				checkHealth(t, s)
			}
			checkDependencies(t, p, s)
			if role.binary == "" {
				return
			}
			checkEnv(t, s, role.binary, vars[role.binary])
			checkSecretsMount(t, s, name == "init")
			checkFiles(t, s, initFiles)
			if role.longRun {
				checkHardening(t, s)
				checkListen(t, s)
			}
		})
	}
}

// checkImage: third-party images pinned to a version of the expected repository;
// ours built from the Dockerfile target of the same name.
func checkImage(t *testing.T, s types.ServiceConfig, binary, repoName string) {
	t.Helper()
	ref, tag, ok := strings.Cut(s.Image, ":")
	if !ok || tag == "" || tag == "latest" {
		t.Errorf("image %q is not pinned to a version", s.Image)
	}
	if binary == "" {
		if ref != repoName {
			t.Errorf("image %q, want %s", s.Image, repoName)
		}
		if s.Build != nil {
			t.Errorf("third-party service builds from %v", s.Build)
		}
		return
	}
	if s.Build == nil || s.Build.Target != binary {
		t.Fatalf("build %+v: want the Dockerfile target %q", s.Build, binary)
	}
	if ref != "trailkeep/"+binary {
		t.Errorf("image %q, want trailkeep/%s:TAG", s.Image, binary)
	}
}

func checkHealth(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
		t.Fatalf("a long-running service needs a health check; has %+v", s.HealthCheck)
	}
	if s.HealthCheck.Interval == nil || s.HealthCheck.Retries == nil {
		t.Errorf("health check without interval or retries: %+v", s.HealthCheck)
	}
}

// checkDependencies: a dependency waits for health only on a service that has a
// health check, and for completion only on the one-shot init; every trailkeep service
// starts after init.
func checkDependencies(t *testing.T, p *types.Project, s types.ServiceConfig) {
	t.Helper()
	for dep, d := range s.DependsOn {
		ds, ok := p.Services[dep]
		if !ok {
			t.Errorf("depends on unknown service %q", dep)
			continue
		}
		switch d.Condition {
		case types.ServiceConditionHealthy:
			if ds.HealthCheck == nil || ds.HealthCheck.Disable {
				t.Errorf("waits for %s to be healthy, but %s has no health check", dep, dep)
			}
		case types.ServiceConditionCompletedSuccessfully:
			if composeRoles[dep].longRun {
				t.Errorf("waits for the long-running %s to complete", dep)
			}
		default:
			t.Errorf("depends on %s with condition %q: start order must wait for health or completion", dep, d.Condition)
		}
	}
	if b := composeRoles[s.Name].binary; b != "" && s.Name != "init" && s.Name != "trailctl" {
		if s.DependsOn["init"].Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("starts before init has written the secrets")
		}
	}
}

// checkEnv: every variable set is one the binary reads (a typo would be silently
// ignored and the default used), and the required ones are set.
func checkEnv(t *testing.T, s types.ServiceConfig, binary string, vars []configref.Var) {
	t.Helper()
	known := map[string]bool{}
	for _, v := range vars {
		known[v.Name] = true
	}
	if len(known) == 0 {
		t.Fatalf("configref knows no variables of %s", binary)
	}
	for k, v := range s.Environment {
		switch {
		case known[k]:
		case binary == "trailctl" && sdkEnv[k]:
		default:
			t.Errorf("sets %s, which %s does not read", k, binary)
		}
		if v == nil || *v == "" {
			t.Errorf("%s is empty", k)
		}
	}
	for _, v := range vars {
		if v.Required {
			if _, ok := s.Environment[v.Name]; !ok {
				t.Errorf("%s needs %s", binary, v.Name)
			}
		}
	}
}

// checkSecretsMount: the secrets volume is read-only everywhere but in init, and
// mounted wherever a *_FILE variable points into it.
func checkSecretsMount(t *testing.T, s types.ServiceConfig, writer bool) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Source == "secrets" {
			if v.ReadOnly == writer {
				t.Errorf("secrets volume read_only=%v, want %v", v.ReadOnly, !writer)
			}
			if v.Target != "/var/lib/trailkeep" {
				t.Errorf("secrets volume at %s: the image's state directory /var/lib/trailkeep (owned by the service user) is what makes it writable for init", v.Target)
			}
			return
		}
	}
	for k := range s.Environment {
		if strings.HasSuffix(k, "_FILE") {
			t.Errorf("reads %s but does not mount the secrets volume", k)
		}
	}
	if writer {
		t.Error("init does not mount the secrets volume it writes")
	}
}

// checkFiles: every *_FILE variable names a file `trailctl init` writes.
func checkFiles(t *testing.T, s types.ServiceConfig, initFiles map[string]bool) {
	t.Helper()
	for k, v := range s.Environment {
		if !strings.HasSuffix(k, "_FILE") || v == nil {
			continue
		}
		if path.Dir(*v) != "/var/lib/trailkeep/secrets" || !initFiles[path.Base(*v)] {
			t.Errorf("%s=%s is not a file trailctl init writes into /var/lib/trailkeep/secrets", k, *v)
		}
	}
}

func checkHardening(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	if !s.ReadOnly {
		t.Error("root filesystem not read-only")
	}
	if len(s.CapDrop) != 1 || s.CapDrop[0] != "ALL" {
		t.Errorf("cap_drop %v, want [ALL]", s.CapDrop)
	}
	if !contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("security_opt %v lacks no-new-privileges", s.SecurityOpt)
	}
	for _, port := range s.Ports {
		if port.HostIP != "127.0.0.1" {
			t.Errorf("port %d published on %q: trial stacks publish on loopback only", port.Target, port.HostIP)
		}
	}
}

// checkListen: the service listens on all interfaces of its container (the
// binaries default to loopback), on the port it publishes and its probe asks.
func checkListen(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	lv := listenVar[s.Name]
	addr := s.Environment[lv]
	if addr == nil {
		t.Fatalf("%s unset: the binary's default listens on loopback, unreachable from other containers and probes alike", lv)
	}
	host, port, ok := strings.Cut(*addr, ":")
	if !ok || host != "0.0.0.0" {
		t.Errorf("%s=%s: want 0.0.0.0:PORT", lv, *addr)
	}
	test := s.HealthCheck.Test
	if len(test) != 4 || test[0] != "CMD" || test[2] != "--probe" {
		t.Fatalf("health check %q: want [CMD <binary> --probe URL]", test)
	}
	if test[1] != "/usr/local/bin/"+composeRoles[s.Name].binary {
		t.Errorf("probe runs %s", test[1])
	}
	u, err := url.Parse(test[3])
	if err != nil || u.Port() != port || u.Path != "/readyz" {
		t.Errorf("probe %s: want http://127.0.0.1:%s/readyz", test[3], port)
	}
	for _, pc := range s.Ports {
		if pc.Target != 4317 && strconv.Itoa(int(pc.Target)) != port {
			t.Errorf("publishes %d but listens on %s", pc.Target, port)
		}
	}
}

// trailctlInitFiles runs the real `trailctl init` and returns the files it writes.
func trailctlInitFiles(t *testing.T, root string) map[string]bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "trailctl")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./cmd/trailctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build trailctl: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	if out, err := exec.Command(bin, "init", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("trailctl init: %v\n%s", err, out)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, e := range ents {
		files[e.Name()] = true
	}
	return files
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
