package service

import (
	"context"
	"strings"
	"testing"
	"time"
)

type inner struct {
	TLS  bool          `env:"TEST_KAFKA_TLS"`
	Wait time.Duration `env:"TEST_KAFKA_WAIT, default=1s"`
}

type other struct {
	TLS bool `env:"TEST_CH_TLS"`
}

type testConfig struct {
	Level string `env:"TEST_LOG_LEVEL, default=info"`
	Port  int    `env:"TEST_PORT, default=1"`
	Kafka inner
	CH    other
}

// TestConfigureNamesTheVariable: a bad value is reported under the variable the
// operator set, also inside nested structs whose field names collide.
func TestConfigureNamesTheVariable(t *testing.T) {
	for _, tc := range []struct{ env, value string }{
		{"TEST_PORT", "eighty"},
		{"TEST_KAFKA_TLS", "maybe"},
		{"TEST_CH_TLS", "maybe"},
		{"TEST_KAFKA_WAIT", "5"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			var cfg testConfig
			_, err := Configure(context.Background(), &cfg, &cfg.Level)
			if err == nil || !strings.HasPrefix(err.Error(), "configuration: "+tc.env+": ") {
				t.Fatalf("error %v; want it to start with the variable %s", err, tc.env)
			}
		})
	}
}
