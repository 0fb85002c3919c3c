package chdb

import (
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
