package event

import (
	"net/netip"
	"testing"
)

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// canonicalJSON returns the RFC 8785 canonical bytes of a decoded document, text
// rules not applied (tests build documents with U+0000 on purpose).
func canonicalJSON(doc any) ([]byte, error) {
	return AppendCanonical(make([]byte, 0, 1024), doc)
}
