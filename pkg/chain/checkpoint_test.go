package chain

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestSignerKeyFromPEM(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	skey, err := SignerKeyFromPEM("pem-key", pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := VerifierKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifiers, err := NewVerifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	c := New(0)
	c.Append([]byte(`{"a":1}`), time.Unix(0, 0))
	cp, err := c.Sign("o", signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Open("o", verifiers); err != nil {
		t.Fatalf("checkpoint signed with a PEM key does not verify: %v", err)
	}
	if !strings.Contains(vkey, base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Public().(ed25519.PublicKey)...))) {
		t.Errorf("verifier key %s does not carry the PEM key's public key", vkey)
	}
	if _, err := SignerKeyFromPEM("x", []byte("not pem")); err == nil {
		t.Error("garbage accepted")
	}
}
