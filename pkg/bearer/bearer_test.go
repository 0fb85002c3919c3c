package bearer

import (
	"errors"
	"net/http/httptest"
	"testing"
)

type entry string

func (e entry) Digest() string { return string(e) }

func TestFind(t *testing.T) {
	secret, sha, err := New()
	if err != nil || len(secret) != 46 || len(sha) != 64 {
		t.Fatalf("New = %q %q %v", secret, sha, err)
	}
	d, err := ParseDigest(sha)
	if err != nil {
		t.Fatal(err)
	}
	set := map[[32]byte]entry{d: entry(sha)}
	for header, want := range map[string]error{
		"Bearer " + secret:        nil,
		"bearer  " + secret + " ": nil,
		"Bearer tk_other":         ErrUnknown,
		"Basic " + secret:         ErrMissing,
		"Bearer ":                 ErrMissing,
		"":                        ErrMissing,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", header)
		got, _, err := Find(r, set)
		if !errors.Is(err, want) || (want == nil && got != entry(sha)) {
			t.Errorf("Authorization %q: %q, %v; want %v", header, got, err, want)
		}
	}
	for _, bad := range []string{"", "zz", sha[:62]} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}
