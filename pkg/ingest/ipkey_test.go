package ingest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
)

// TestTenantIPKeysAreDerivedPerTenant holds the cached per-tenant IP keys to their
// derivation, HMAC-SHA256(master, "trailkeep/ip/v1/" + tenant), computed here: asked
// for in any order, from many goroutines, again and again, each tenant gets its own
// key and never another tenant's.
func TestTenantIPKeysAreDerivedPerTenant(t *testing.T) {
	s := newTestServer(t, &memPublisher{failAt: -1})
	want := func(tenant string) []byte {
		m := hmac.New(sha256.New, s.o.IPKey)
		m.Write([]byte("trailkeep/ip/v1/" + tenant))
		return m.Sum(nil)
	}
	tenants := []string{"acme", "globex", "acme-platform", "", "a", "ac"}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tn := tenants[(g+i*7)%len(tenants)]
				if got := s.tenantIPKey(tn); !bytes.Equal(got, want(tn)) {
					select {
					case errs <- fmt.Sprintf("tenant %q: key %x, want %x", tn, got, want(tn)):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
