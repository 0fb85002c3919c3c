package kafka

import (
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/trailkeep/trailkeep/internal/tlsfiles"
)

// Security is how every trailkeep binary connects to a production Kafka: TLS (a CA
// bundle to trust, optionally a client certificate for mutual TLS) and SASL (PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512), all from the environment. The zero value is a
// plaintext connection without authentication (the local broker).
type Security struct {
	// TLS turns TLS on; implied by any TLS file.
	TLS bool `env:"TRAILKEEP_KAFKA_TLS"`
	// TLSCAFile is a PEM bundle of the CAs to trust; default the system roots.
	TLSCAFile string `env:"TRAILKEEP_KAFKA_TLS_CA_FILE"`
	// TLSCertFile and TLSKeyFile are a PEM client certificate and key (mutual TLS).
	TLSCertFile string `env:"TRAILKEEP_KAFKA_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"TRAILKEEP_KAFKA_TLS_KEY_FILE"`
	// TLSServerName overrides the host name checked in the brokers' certificates.
	TLSServerName string `env:"TRAILKEEP_KAFKA_TLS_SERVER_NAME"`
	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL.
	SASLMechanism string `env:"TRAILKEEP_KAFKA_SASL_MECHANISM"`
	// SASLUser and SASLPassword (or SASLPasswordFile, which wins) authenticate.
	SASLUser         string `env:"TRAILKEEP_KAFKA_SASL_USER"`
	SASLPassword     string `env:"TRAILKEEP_KAFKA_SASL_PASSWORD"`
	SASLPasswordFile string `env:"TRAILKEEP_KAFKA_SASL_PASSWORD_FILE"`
}

// Opts returns the franz-go options for s, to append to every client's options.
func (s Security) Opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.TLS || s.TLSCAFile != "" || s.TLSCertFile != "" || s.TLSKeyFile != "" {
		cfg, err := tlsfiles.Files{CA: s.TLSCAFile, Cert: s.TLSCertFile, Key: s.TLSKeyFile, ServerName: s.TLSServerName}.Config()
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS (TRAILKEEP_KAFKA_TLS_*): %w", err)
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s.SASLMechanism == "" {
		if s.SASLUser != "" {
			return nil, fmt.Errorf("kafka: TRAILKEEP_KAFKA_SASL_USER is set without TRAILKEEP_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return opts, nil
	}
	pw := s.SASLPassword
	if s.SASLPasswordFile != "" {
		b, err := os.ReadFile(s.SASLPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: TRAILKEEP_KAFKA_SASL_PASSWORD_FILE: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	if s.SASLUser == "" || pw == "" {
		return nil, fmt.Errorf("kafka: SASL %s needs TRAILKEEP_KAFKA_SASL_USER and a password (TRAILKEEP_KAFKA_SASL_PASSWORD or _FILE)", s.SASLMechanism)
	}
	var m sasl.Mechanism
	switch strings.ToUpper(s.SASLMechanism) {
	case "PLAIN":
		m = plain.Auth{User: s.SASLUser, Pass: pw}.AsMechanism()
	case "SCRAM-SHA-256":
		m = scram.Auth{User: s.SASLUser, Pass: pw}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		m = scram.Auth{User: s.SASLUser, Pass: pw}.AsSha512Mechanism()
	default:
		return nil, fmt.Errorf("kafka: TRAILKEEP_KAFKA_SASL_MECHANISM %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.SASLMechanism)
	}
	return append(opts, kgo.SASL(m)), nil
}
