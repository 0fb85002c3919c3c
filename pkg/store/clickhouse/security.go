package clickhouse

import (
	"fmt"
	"os"
	"strings"

	"github.com/trailkeep/trailkeep/internal/tlsfiles"
)

// Security is how the binaries authenticate to and encrypt the connection with a
// production ClickHouse, from the environment: the password from a file (a mounted
// secret) as well as a variable, and TLS on the native protocol's secure port (9440)
// with a CA bundle and optionally a client certificate.
type Security struct {
	// PasswordFile holds the password (a trailing newline is ignored); it wins over
	// TRAILKEEP_CLICKHOUSE_PASSWORD.
	PasswordFile string `env:"TRAILKEEP_CLICKHOUSE_PASSWORD_FILE"`
	// TLS turns TLS on; implied by any TLS file.
	TLS bool `env:"TRAILKEEP_CLICKHOUSE_TLS"`
	// TLSCAFile is a PEM bundle of the CAs to trust; default the system roots.
	TLSCAFile string `env:"TRAILKEEP_CLICKHOUSE_TLS_CA_FILE"`
	// TLSCertFile and TLSKeyFile are a PEM client certificate and key (mutual TLS).
	TLSCertFile string `env:"TRAILKEEP_CLICKHOUSE_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"TRAILKEEP_CLICKHOUSE_TLS_KEY_FILE"`
	// TLSServerName overrides the host name checked in the server's certificate.
	TLSServerName string `env:"TRAILKEEP_CLICKHOUSE_TLS_SERVER_NAME"`
}

// Apply sets o's password (from the file, when one is named) and TLS configuration.
func (s Security) Apply(o *Options) error {
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return fmt.Errorf("clickhouse: TRAILKEEP_CLICKHOUSE_PASSWORD_FILE: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	if s.TLS || s.TLSCAFile != "" || s.TLSCertFile != "" || s.TLSKeyFile != "" {
		cfg, err := tlsfiles.Files{CA: s.TLSCAFile, Cert: s.TLSCertFile, Key: s.TLSKeyFile, ServerName: s.TLSServerName}.Config()
		if err != nil {
			return fmt.Errorf("clickhouse: TLS (TRAILKEEP_CLICKHOUSE_TLS_*): %w", err)
		}
		o.TLS = cfg
	}
	return nil
}
