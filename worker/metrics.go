package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's Prometheus collectors. A nil *Metrics records
// nothing.
type Metrics struct {
	messages  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inflight  prometheus.Gauge
	published *prometheus.CounterVec
}

// NewMetrics registers the worker's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkissuer_messages_total",
			Help: "Messages processed, by outcome (issued, ignored, dead_letter, retry) and reason.",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "linkissuer_message_seconds",
			Help:    "Time from receipt to ack decision, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{"outcome"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linkissuer_messages_in_flight",
			Help: "Messages being processed now.",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkissuer_published_total",
			Help: "Messages published, by logical topic and result (ok, error).",
		}, []string{"topic", "result"}),
	}
	reg.MustRegister(m.messages, m.latency, m.inflight, m.published)
	return m
}

func (m *Metrics) observe(d Decision, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(string(d.Outcome), d.Reason).Inc()
	m.latency.WithLabelValues(string(d.Outcome)).Observe(elapsed.Seconds())
}

func (m *Metrics) inFlight(delta float64) {
	if m == nil {
		return
	}
	m.inflight.Add(delta)
}

// Published counts one publish result for a logical topic.
func (m *Metrics) Published(topic string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.published.WithLabelValues(topic, result).Inc()
}
