package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// TestTopicSettings creates topics on the real broker and reads back the
// min.insync.replicas the broker holds for them.
func TestTopicSettings(t *testing.T) {
	b := kafkatest.Shared(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name     string
		settings kafka.TopicSettings
		want     string
		onTopic  bool // set on the topic rather than inherited
	}{
		{"broker default", kafka.TopicSettings{}, "1", false},
		{"set on the topic", kafka.TopicSettings{MinInsyncReplicas: 1}, "1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := kafkatest.Topic("settings")
			if err := kafka.EnsureTopics(ctx, cl, kafka.Topic{Name: topic, Partitions: 1, Replication: 1, Configs: tc.settings.Configs()}); err != nil {
				t.Fatal(err)
			}
			rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := rcs.On(topic, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range rc.Configs {
				if c.Key == "min.insync.replicas" {
					onTopic := c.Source == kmsg.ConfigSourceDynamicTopicConfig
					if c.MaybeValue() != tc.want || onTopic != tc.onTopic {
						t.Fatalf("min.insync.replicas = %q from source %v; want %q, set on the topic: %v", c.MaybeValue(), c.Source, tc.want, tc.onTopic)
					}
					return
				}
			}
			t.Fatal("broker reports no min.insync.replicas")
		})
	}
}
