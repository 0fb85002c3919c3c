package chdb

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestEngine(t *testing.T) {
	e := Shared(t)
	out, err := e.Query("SELECT version(), 1 + 1", "TSV")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "26.") || !strings.HasSuffix(strings.TrimSpace(out), "2") {
		t.Fatalf("got %q", out)
	}
	if _, err := e.Query("SELEC 1", "TSV"); err == nil || !strings.Contains(err.Error(), "Syntax error") {
		t.Errorf("syntax error not reported: %v", err)
	}
}

// TestPanicAfterConnectIsRecovered: once the engine is connected, a Go nil
// dereference is still a panic the program can recover, not a SIGSEGV that kills the
// process. It runs in a child process, so the failure it guards against is reported
// rather than taking the test binary down.
func TestPanicAfterConnectIsRecovered(t *testing.T) {
	if os.Getenv("TRAILKEEP_CHDB_PANIC_CHILD") == "1" {
		Shared(t)
		fmt.Println(recoverNilDeref())
		return
	}
	Shared(t) // fetch the library in the parent: the child's failure is then only the signal
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicAfterConnectIsRecovered$", "-test.v")
	cmd.Env = append(os.Environ(), "TRAILKEEP_CHDB_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "recovered: runtime error: invalid memory address or nil pointer dereference") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func recoverNilDeref() (msg string) {
	defer func() { msg = fmt.Sprint("recovered: ", recover()) }()
	var p *int
	return fmt.Sprint(*p)
}

// TestNoOutputLeaksAfterError: the blocks a statement produced before failing must
// not appear in the next statement's result (libchdb 26.5 prepends them).
func TestNoOutputLeaksAfterError(t *testing.T) {
	e := Shared(t)
	for name, failing := range map[string]string{
		"exception mid-stream": "SELECT number AS secret FROM numbers(200000) WHERE throwIf(number = 150000) = 0 SETTINGS max_block_size = 1000",
		"time limit":           "SELECT sleep(1) AS secret FROM numbers(3) SETTINGS max_block_size = 1, max_execution_time = 1",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.Query(failing, "TSVWithNamesAndTypes"); err == nil {
				t.Fatal("the failing statement succeeded")
			}
			out, err := e.Query("SELECT 42 AS x", "TSVWithNamesAndTypes")
			if err != nil || out != "x\nUInt8\n42\n" {
				t.Fatalf("next result (%d bytes) = %.200q…, %v; want only its own rows", len(out), out, err)
			}
		})
	}
}
