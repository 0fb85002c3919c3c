package chainerapp

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailkeep/trailkeep/pkg/chainer"
)

// chainerSeries are the chainer's counters as Prometheus series, read from
// chainer.Stats at each scrape: a partition that stops being chained (refused, or
// aborting in a loop) must show on a dashboard and page someone, not only in a log.
var chainerSeries = []struct {
	name, help string
	value      func(chainer.Stats) int64
}{
	{"trailkeep_chainer_chained_total", "Events chained (given a seq and a leaf) by this instance.", func(s chainer.Stats) int64 { return s.Chained }},
	{"trailkeep_chainer_deadlettered_total", "Input records refused by the chainer (not canonical) and written to its dead-letter topic.", func(s chainer.Stats) int64 { return s.DeadLettered }},
	{"trailkeep_chainer_checkpoints_total", "Checkpoints signed.", func(s chainer.Stats) int64 { return s.Checkpoints }},
	{"trailkeep_chainer_commits_total", "Chaining transactions committed.", func(s chainer.Stats) int64 { return s.Commits }},
	{"trailkeep_chainer_aborts_total", "Chaining transactions aborted (the partitions are restored from Kafka and retried): alert on a steady increase.", func(s chainer.Stats) int64 { return s.Aborts }},
	{"trailkeep_chainer_restores_total", "Partition chain states rebuilt from the output topics (after an assignment or an abort).", func(s chainer.Stats) int64 { return s.Restores }},
	{"trailkeep_chainer_refused_partitions_total", "Partitions this instance stopped chaining because their chain cannot be restored (see the log for the cause): alert on any increase.", func(s chainer.Stats) int64 { return s.Refused }},
}

// registerChainer registers the chainer's series on reg.
func registerChainer(reg prometheus.Registerer, c *chainer.Chainer) {
	for _, s := range chainerSeries {
		value := s.value
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: s.name, Help: s.help}, func() float64 {
			return float64(value(c.Stats()))
		}))
	}
}
