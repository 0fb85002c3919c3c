package proctest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildDiesWithTheTest: a helper process (this test binary) starts a child
// with DieWithTest, prints its pid and exits without cleaning up, as a test binary
// killed by its timeout does; the child must be gone.
func TestChildDiesWithTheTest(t *testing.T) {
	if os.Getenv("PROCTEST_HELPER") == "1" {
		cmd := exec.Command("sleep", "60")
		DieWithTest(cmd)
		if err := cmd.Start(); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n")
		os.Exit(0)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithTheTest$")
	helper.Env = append(os.Environ(), "PROCTEST_HELPER=1")
	out, err := helper.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("helper printed %q", out)
	}
	for i := 0; ; i++ {
		// Gone, or a zombie reaped by init shortly: signal 0 fails once it is gone.
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			return
		}
		if i == 100 {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still running after its parent test process exited", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProcessCPUAgreesWithRusage: /proc's count of this process's CPU agrees with
// getrusage's to within the kernel's tick, after enough work that a unit error
// (ticks taken for milliseconds, or one field instead of two) would show.
func TestProcessCPUAgreesWithRusage(t *testing.T) {
	for start := SelfCPU(t); SelfCPU(t)-start < 300*time.Millisecond; {
		for i := 0; i < 1e6; i++ {
			_ = strconv.Itoa(i)
		}
	}
	self, proc := SelfCPU(t), ProcessCPU(t, os.Getpid())
	if d := self - proc; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("getrusage %v, /proc %v", self, proc)
	}
}
