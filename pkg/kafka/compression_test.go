package kafka_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// TestProducerCompression produces with each codec name to an in-process broker and
// reads the codec off the record batch the broker received (the low three bits of
// the batch attributes), so a name mapped to the wrong codec, or ignored, fails.
func TestProducerCompression(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int16 // Kafka's codec id in a v2 record batch
	}{
		{"", 3}, {"lz4", 3}, {"none", 0}, {"gzip", 1}, {"snappy", 2}, {"zstd", 4},
	} {
		t.Run("name="+tc.name, func(t *testing.T) {
			got := producedCodecs(t, tc.name)
			if len(got) == 0 {
				t.Fatal("the broker received no record batch")
			}
			for _, c := range got {
				if c != tc.want {
					t.Fatalf("batch codec %d, want %d (all: %v)", c, tc.want, got)
				}
			}
		})
	}
}

func TestProducerCompressionUnknown(t *testing.T) {
	for _, name := range []string{"LZ4", "zstd ", "brotli", "0"} {
		t.Run(name, func(t *testing.T) {
			_, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Compression: name})
			if err == nil || !strings.Contains(err.Error(), "want lz4, zstd, snappy, gzip or none") {
				t.Fatalf("compression %q: err %v, want the accepted names", name, err)
			}
		})
	}
}

// producedCodecs publishes one compressible record with compression name and returns
// the codec of every record batch in the produce requests the broker saw.
func producedCodecs(t *testing.T, name string) []int16 {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "codec"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var codecs []int16
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				// RecordBatch v2: base offset (8), length (4), leader epoch (4),
				// magic (1), CRC (4), then attributes (2).
				if len(p.Records) >= 23 {
					mu.Lock()
					codecs = append(codecs, int16(binary.BigEndian.Uint16(p.Records[21:23]))&0x07)
					mu.Unlock()
				}
			}
		}
		return nil, nil, false
	})
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: c.ListenAddrs(), Topic: "codec", Compression: name})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer p.Close(ctx)
	if errs := p.Publish(ctx, []kafka.Message{{Key: []byte("k"), Value: bytes.Repeat([]byte("compressible "), 1000)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	mu.Lock()
	defer mu.Unlock()
	return append([]int16(nil), codecs...)
}
