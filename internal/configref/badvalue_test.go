package configref

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBadValueNamesVariable sets each typed variable of each service to a value of
// the wrong type and runs the real binary: it must exit 1 before starting anything,
// with a message naming the variable (not the Go field behind it).
func TestBadValueNamesVariable(t *testing.T) {
	root, vars := collect(t)
	dir := t.TempDir()
	for _, b := range Binaries {
		if b.Name == "trailctl" { // flags override its variables; covered by its own tests
			continue
		}
		bin := filepath.Join(dir, b.Name)
		build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./cmd/"+b.Name)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.Name, err, out)
		}
		n := 0
		for _, v := range vars[b.Name] {
			if !strings.HasPrefix(v.Type, "int") && v.Type != "bool" && !strings.HasPrefix(v.Type, "duration") {
				continue
			}
			n++
			t.Run(b.Name+"/"+v.Name, func(t *testing.T) {
				cmd := exec.Command(bin)
				cmd.Dir = dir
				cmd.Env = []string{v.Name + "=not-a-" + strings.Fields(v.Type)[0], "PATH=" + os.Getenv("PATH")}
				for _, r := range vars[b.Name] {
					if r.Required { // present, so the bad value is what fails
						cmd.Env = append(cmd.Env, r.Name+"=x")
					}
				}
				out, err := cmd.CombinedOutput()
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 1 {
					t.Fatalf("exit %v; want 1\n%s", err, out)
				}
				if !strings.Contains(string(out), v.Name+": ") || strings.Contains(string(out), `"msg":"listening"`) {
					t.Fatalf("the message does not name %s first, or the service started:\n%s", v.Name, out)
				}
			})
		}
		if n == 0 {
			t.Errorf("%s: no typed variables found", b.Name)
		}
	}
}
