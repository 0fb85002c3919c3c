package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	accepted   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	conflicts  *prometheus.CounterVec
	sampled    *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	ack        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, pub Publisher) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailkeep_ingest_events_accepted_total",
			Help: "Events acknowledged by Kafka, by endpoint.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailkeep_ingest_events_rejected_total",
			Help: "Events or requests not accepted, by endpoint and reason (the failing rule, unauthorized, unavailable, ...).",
		}, []string{"endpoint", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailkeep_ingest_events_duplicate_total",
			Help: "Events answered from the idempotency-key cache instead of being written again.",
		}, []string{"endpoint"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailkeep_ingest_events_idempotency_conflict_total",
			Help: "Events stored although an earlier event had their idempotency key, because their content differs (marked idempotency_conflict).",
		}, []string{"endpoint"}),
		sampled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailkeep_ingest_events_sampled_out_total",
			Help: "OpenTelemetry records not stored because the tenant samples their event (TRAILKEEP_INGEST_OTLP_SAMPLE).",
		}, []string{"endpoint"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailkeep_ingest_request_bytes_total",
			Help: "Request body bytes read, by endpoint.",
		}, []string{"endpoint"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "trailkeep_ingest_request_duration_seconds",
			Help:    "Request latency including the Kafka acknowledgement, by endpoint and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint", "code"}),
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "trailkeep_ingest_kafka_ack_seconds",
			Help:    "Time from handing a request's events to the producer until all were acknowledged or failed.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trailkeep_ingest_producer_buffered_records",
		Help: "Records handed to the Kafka producer and not yet acknowledged (producer lag).",
	}, func() float64 { return float64(pub.Buffered()) })
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trailkeep_ingest_kafka_ready",
		Help: "1 when the last probe reached a Kafka broker.",
	}, func() float64 {
		if pub.Ready() {
			return 1
		}
		return 0
	})
	reg.MustRegister(m.accepted, m.rejected, m.duplicates, m.conflicts, m.sampled, m.bytes, m.duration, m.ack, lag, ready,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}
