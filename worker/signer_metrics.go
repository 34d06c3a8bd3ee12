package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkissuer/linkissuer/sign/engine"
)

// signerCollector exports a signing engine's counters at scrape time.
type signerCollector struct {
	stats func() engine.Stats

	signatures, calls, retries, throttled, timeouts, dedup *prometheus.Desc
	inflight, rate, callLatency, signLatency               *prometheus.Desc
}

// NewSignerCollector exports the engine's Stats as
// linkissuer_signatures_total{result}, linkissuer_signer_calls_total,
// linkissuer_signer_retries_total, linkissuer_signer_throttled_total (429s),
// linkissuer_signer_timeouts_total, linkissuer_signer_deduplicated_total,
// linkissuer_signer_in_flight, linkissuer_signer_rate (calls/s allowed now)
// and the latency histograms linkissuer_signer_call_seconds and
// linkissuer_sign_seconds.
func NewSignerCollector(stats func() engine.Stats) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &signerCollector{
		stats:       stats,
		signatures:  d("linkissuer_signatures_total", "Signatures asked of the engine, by result (ok, failed).", "result"),
		calls:       d("linkissuer_signer_calls_total", "Calls made to the signer (signBlob)."),
		retries:     d("linkissuer_signer_retries_total", "Signer calls that were retries."),
		throttled:   d("linkissuer_signer_throttled_total", "Signer calls answered 429 / RESOURCE_EXHAUSTED."),
		timeouts:    d("linkissuer_signer_timeouts_total", "Signer calls cut by the per-call deadline."),
		dedup:       d("linkissuer_signer_deduplicated_total", "Signatures answered by an identical request in flight."),
		inflight:    d("linkissuer_signer_in_flight", "Signer calls running now."),
		rate:        d("linkissuer_signer_rate", "Signer calls per second the adaptive limiter allows now."),
		callLatency: d("linkissuer_signer_call_seconds", "Latency of one signer call."),
		signLatency: d("linkissuer_sign_seconds", "Latency of one signature, waits and retries included."),
	}
}

func (c *signerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.signatures, c.calls, c.retries, c.throttled, c.timeouts, c.dedup, c.inflight, c.rate, c.callLatency, c.signLatency} {
		ch <- d
	}
}

func (c *signerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.signatures, s.Successes, "ok")
	counter(c.signatures, s.Failures, "failed")
	counter(c.calls, s.Calls)
	counter(c.retries, s.Retries)
	counter(c.throttled, s.Throttled)
	counter(c.timeouts, s.Timeouts)
	counter(c.dedup, s.Deduplicated)
	ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, s.Rate)
	for _, h := range []struct {
		desc *prometheus.Desc
		hist engine.Histogram
	}{{c.callLatency, s.CallLatency}, {c.signLatency, s.SignLatency}} {
		buckets := make(map[float64]uint64, len(h.hist.Bounds))
		var cum uint64
		for i, b := range h.hist.Bounds {
			if i < len(h.hist.Counts) {
				cum += h.hist.Counts[i]
			}
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(h.desc, h.hist.Count, h.hist.Sum.Seconds(), buckets)
	}
}
