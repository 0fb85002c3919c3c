package queryapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFollowersAreBounded: waiting follow calls are limited per token and in all;
// one more is refused with 429 and audited, and a slot frees when a call answers.
func TestFollowersAreBounded(t *testing.T) {
	ts := parseTestTokens(t, tokenEntry("secret-a", "a", "reader", "acme"), tokenEntry("secret-b", "b", "reader", "acme"), tokenEntry("secret-c", "c", "reader", "acme"))
	pub := &okPublisher{}
	s, err := New(Options{Store: &scopeStore{}, Tokens: ts, Publisher: pub, MaxFollowersPerToken: 2, MaxFollowers: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	follow := func(token, wait string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/follow?after=0:1&wait="+wait, nil)
		req.Header.Set("Authorization", "Bearer secret-"+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	waiting := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			s.followers.mu.Lock()
			got := s.followers.total
			s.followers.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d follow calls waiting, want %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	for _, tok := range []string{"a", "a"} {
		wg.Add(1)
		go func() { defer wg.Done(); follow(tok, "3s") }()
	}
	waiting(2)
	if code, body := follow("a", "3s"); code != http.StatusTooManyRequests || !strings.Contains(body, `token \"a\" already has 2`) {
		t.Errorf("a third waiting call of one token: %d %s, want 429", code, body)
	}
	if code, body := follow("a", ""); code != http.StatusOK {
		t.Errorf("a call that does not wait is not limited: %d %s", code, body)
	}
	wg.Add(1)
	go func() { defer wg.Done(); follow("b", "3s") }()
	waiting(3)
	if code, body := follow("c", "3s"); code != http.StatusTooManyRequests || !strings.Contains(body, "3 follow calls are waiting") {
		t.Errorf("past the server's limit: %d %s, want 429", code, body)
	}
	wg.Wait()
	waiting(0)
	if code, body := follow("a", "1s"); code != http.StatusOK {
		t.Errorf("after the waiting calls answered: %d %s", code, body)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if pub.n != 7 {
		t.Errorf("%d access events, want one per call (7), refusals included", pub.n)
	}
}
