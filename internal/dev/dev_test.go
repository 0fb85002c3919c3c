package dev

import (
	"reflect"
	"testing"
	"time"
)

// TestReadConfigsLayers: dev's wiring wins over the environment (a shell's broker
// address must not redirect dev's events), the environment wins over dev's tuning
// defaults, and the defaults apply when the environment is silent.
func TestReadConfigsLayers(t *testing.T) {
	o := Options{Deployment: "dev", IngestAddr: "127.0.0.1:1", QueryAddr: "127.0.0.1:2"}
	info := Info{KafkaAddr: "127.0.0.1:9", SecretsDir: t.TempDir(), ArchiveDir: t.TempDir()}
	tests := []struct {
		name string
		env  map[string]string
		want func(*configs) (got, want any)
	}{
		{"wiring over environment", map[string]string{"TRAILKEEP_KAFKA_BROKERS": "elsewhere:9092"},
			func(c *configs) (any, any) { return c.chainer.Brokers, []string{"127.0.0.1:9"} }},
		{"wiring over environment: archive", map[string]string{"TRAILKEEP_S3_DIR": "/elsewhere"},
			func(c *configs) (any, any) { return c.exporter.S3Dir, info.ArchiveDir }},
		{"environment over defaults: batch rows", map[string]string{"TRAILKEEP_WRITER_BATCH_ROWS": "10000"},
			func(c *configs) (any, any) { return c.chainer.WriterBatchRows, 10000 }},
		{"environment over defaults: linger", map[string]string{"TRAILKEEP_S3_LINGER": "5s"},
			func(c *configs) (any, any) { return c.exporter.S3Linger, 5 * time.Second }},
		{"defaults when silent: batch rows", nil,
			func(c *configs) (any, any) { return c.chainer.WriterBatchRows, 2500 }},
		{"defaults when silent: memory limit", nil,
			func(c *configs) (any, any) { return c.ingest.MemoryLimit, int64(0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := readConfigs(o, info)
			if err != nil {
				t.Fatal(err)
			}
			got, want := tt.want(c)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
