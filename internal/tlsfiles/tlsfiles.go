// Package tlsfiles builds the client TLS configuration every binary uses for Kafka
// and ClickHouse from files named in the environment: a CA bundle (PEM) to trust
// instead of the system roots, and an optional client certificate and key (PEM) for
// mutual TLS.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of a client TLS configuration.
type Files struct {
	CA         string // CA bundle; empty: the system roots
	Cert, Key  string // client certificate and key; both or neither
	ServerName string // overrides the name checked in the server's certificate
}

// Config loads the files. TLS 1.2 is the floor.
func (f Files) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", f.CA)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case f.Cert != "" || f.Key != "":
		return nil, errors.New("a client certificate needs both the certificate and the key file")
	}
	return cfg, nil
}
