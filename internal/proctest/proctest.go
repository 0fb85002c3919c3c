// Package proctest runs a trailkeep binary as its own process for start-up tests:
// built for the test, started with exactly the environment the test gives
// (plus PATH), its output kept in a log the failure shows, stopped with SIGTERM when
// the test ends and required to exit cleanly.
package proctest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/repo"
)

// Build builds ./cmd/name into the test's temporary directory (removed with it; the
// Go build cache makes a second build of the same package cheap) and returns its path.
func Build(t testing.TB, name string) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", p, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return p
}

// Proc is a running binary.
type Proc struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

// Start runs bin with env and stops it with SIGTERM at the end of the test; it must
// then exit 0 within 30 s.
func Start(t testing.TB, bin string, env ...string) *Proc {
	t.Helper()
	log := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s did not exit cleanly on SIGTERM: %v\n%s", filepath.Base(bin), err, p.Log())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s still running 30 s after SIGTERM\n%s", filepath.Base(bin), p.Log())
		}
	})
	return p
}

// DieWithTest makes cmd's process get SIGKILL when the test process dies: a test
// binary killed by its timeout runs no cleanup, and would otherwise leave the
// servers it started running (Linux: PR_SET_PDEATHSIG).
func DieWithTest(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// Log is what the process wrote so far.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// WaitStatus polls url until it answers code, failing after timeout or when the
// process exits.
func (p *Proc) WaitStatus(t testing.TB, url string, code int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("process exited (%v) while waiting for %s\n%s", err, url, p.Log())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == code {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within %s (last: %s)\n%s", url, code, timeout, last, p.Log())
}

// Addr returns a free loopback address.
func Addr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Run runs bin to completion with env (plus PATH) and returns its output and exit
// code; it fails the test if the binary runs for more than 30 s.
func Run(t testing.TB, bin string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(bin), err)
	}
	return string(out), 0
}

// SelfCPU is the CPU time (user and system) the calling process has used, every
// thread counted: benchmarks report it per event, so that work on threads Go does
// not see (the in-process ClickHouse engine's) is not left out.
func SelfCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcessCPU is the CPU time (user and system, every thread) process pid has used:
// benchmarks charge a server's share of a run (the broker's JVM) to the events that
// caused it. It reads /proc/pid/stat, whose times are in USER_HZ (100 on Linux).
func ProcessCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("proctest: CPU of pid %d: %v", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses: count from
	// the last ')'. utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("proctest: /proc/%d/stat has %d fields after the name", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("proctest: /proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100)
}
