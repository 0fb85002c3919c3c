package sink

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the exporter's Prometheus series, labelled by sink. One Metrics serves
// every Runner of a process.
type Metrics struct {
	sent, retried, dead *prometheus.CounterVec
	lag, lastSeq        *prometheus.GaugeVec
	buffered, up        *prometheus.GaugeVec
	stalls              *prometheus.CounterVec
}

// NewMetrics registers the series on reg (nil: a private registry, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailkeep_exporter_sent_total",
			Help: "Records (or checkpoints) the sink acknowledged."}, []string{"sink", "kind"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailkeep_exporter_retries_total",
			Help: "Deliveries that failed transiently and were retried after a backoff."}, []string{"sink"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailkeep_exporter_deadlettered_total",
			Help: "Records the sink rejected, written to its dead-letter topic."}, []string{"sink"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "trailkeep_exporter_lag_records",
			Help: "Records of the partition not yet acknowledged by the sink (high watermark minus delivered)."}, []string{"sink", "topic", "partition"}),
		lastSeq: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "trailkeep_exporter_last_acked_seq",
			Help: "Chain seq of the last record of the partition the sink acknowledged."}, []string{"sink", "partition"}),
		buffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "trailkeep_exporter_buffered_bytes",
			Help: "Bytes of records fetched and waiting for the sink."}, []string{"sink"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "trailkeep_exporter_sink_up",
			Help: "1 while the sink runs; 0 once it stopped on a fatal error (credentials refused): alert on it."}, []string{"sink"}),
		stalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailkeep_exporter_stalls_total",
			Help: "Times the watchdog found the sink's group with lag and nothing acknowledged for the stall timeout, and restarted its consumer: alert on any increase."}, []string{"sink"}),
	}
	reg.MustRegister(m.sent, m.retried, m.dead, m.lag, m.lastSeq, m.buffered, m.up, m.stalls)
	return m
}

func part(p int32) string { return strconv.Itoa(int(p)) }
