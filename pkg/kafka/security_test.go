package kafka_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// TestSecureConnections produces and reads back a record over every secured path a
// production broker offers, against a real broker configured with a generated CA and
// SCRAM users; and checks that wrong credentials or a missing client certificate are
// refused rather than silently downgraded.
func TestSecureConnections(t *testing.T) {
	b := kafkatest.PrivateSecure(t, "kafka-secure-test", 19392)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("bob-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	topic := kafkatest.Topic("secure")
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, admin, kafka.Topic{Name: topic, Partitions: 1, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, addr string
		sec        kafka.Security
		refused    bool
	}{
		{"SASL PLAIN over TLS", b.SASLAddr, kafka.Security{TLSCAFile: b.CAFile, SASLMechanism: "PLAIN", SASLUser: "alice", SASLPassword: "alice-secret"}, false},
		{"SCRAM-SHA-256 over TLS", b.SASLAddr, kafka.Security{TLSCAFile: b.CAFile, SASLMechanism: "SCRAM-SHA-256", SASLUser: "alice", SASLPassword: "alice-secret"}, false},
		{"SCRAM-SHA-512, password from a file", b.SASLAddr, kafka.Security{TLSCAFile: b.CAFile, SASLMechanism: "SCRAM-SHA-512", SASLUser: "bob", SASLPasswordFile: pwFile}, false},
		{"mutual TLS", b.MTLSAddr, kafka.Security{TLSCAFile: b.CAFile, TLSCertFile: b.CertFile, TLSKeyFile: b.KeyFile}, false},
		{"wrong SCRAM password", b.SASLAddr, kafka.Security{TLSCAFile: b.CAFile, SASLMechanism: "SCRAM-SHA-256", SASLUser: "alice", SASLPassword: "nope"}, true},
		{"no client certificate", b.MTLSAddr, kafka.Security{TLSCAFile: b.CAFile}, true},
		{"untrusted server", b.SASLAddr, kafka.Security{TLS: true, SASLMechanism: "PLAIN", SASLUser: "alice", SASLPassword: "alice-secret"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.sec.Opts()
			if err != nil {
				t.Fatal(err)
			}
			p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{tc.addr}, Topic: topic, Opts: opts, DeliveryTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			errs := p.Publish(ctx, []kafka.Message{{Key: []byte("k"), Value: []byte(tc.name)}})
			switch {
			case !tc.refused && errs[0] != nil:
				t.Fatalf("publish: %v", errs[0])
			case tc.refused && errs[0] == nil:
				t.Fatal("published although the connection should have been refused")
			}
		})
	}
}

func TestSecurityConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		sec  kafka.Security
	}{
		{"unknown mechanism", kafka.Security{SASLMechanism: "GSSAPI", SASLUser: "a", SASLPassword: "b"}},
		{"user without mechanism", kafka.Security{SASLUser: "a"}},
		{"mechanism without password", kafka.Security{SASLMechanism: "PLAIN", SASLUser: "a"}},
		{"missing CA file", kafka.Security{TLSCAFile: "/nonexistent/ca.pem"}},
		{"certificate without key", kafka.Security{TLSCertFile: "/nonexistent/c.pem"}},
		{"missing password file", kafka.Security{SASLMechanism: "PLAIN", SASLUser: "a", SASLPasswordFile: "/nonexistent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.sec.Opts(); err == nil {
				t.Fatal("accepted")
			} else if !strings.Contains(err.Error(), "TRAILKEEP_KAFKA") && !strings.Contains(err.Error(), "certificate") {
				t.Errorf("error does not name the setting: %v", err)
			}
		})
	}
}

// TestSecurityFromEnvironment: the binaries embed Security in their configuration as
// an untagged field; go-envconfig must fill it from the documented variables.
func TestSecurityFromEnvironment(t *testing.T) {
	var cfg struct {
		Kafka kafka.Security
	}
	env := envconfig.MapLookuper(map[string]string{"TRAILKEEP_KAFKA_TLS": "true", "TRAILKEEP_KAFKA_TLS_CA_FILE": "/ca.pem",
		"TRAILKEEP_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "TRAILKEEP_KAFKA_SASL_USER": "u", "TRAILKEEP_KAFKA_SASL_PASSWORD_FILE": "/pw"})
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &cfg, Lookuper: env}); err != nil {
		t.Fatal(err)
	}
	want := kafka.Security{TLS: true, TLSCAFile: "/ca.pem", SASLMechanism: "SCRAM-SHA-512", SASLUser: "u", SASLPasswordFile: "/pw"}
	if cfg.Kafka != want {
		t.Fatalf("%+v, want %+v", cfg.Kafka, want)
	}
}
