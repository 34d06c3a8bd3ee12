package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkissuer/linkissuer/sign/engine"
	"github.com/linkissuer/linkissuer/worker"
)

// describer collects what collectors describe instead of registering them.
type describer struct{ names map[string]bool }

func (d *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describer) Unregister(prometheus.Collector) bool { return false }

var (
	fqName    = regexp.MustCompile(`fqName: "([a-z0-9_:]+)"`)
	metricRef = regexp.MustCompile(`linkissuer_[a-z0-9_]+`)
)

// workerMetrics returns every metric name the worker exports: its own,
// the push server's and the signing engine's.
func workerMetrics() map[string]bool {
	d := &describer{names: map[string]bool{}}
	worker.NewMetrics(d)
	worker.NewHTTPMetrics(d)
	d.MustRegister(worker.NewSignerCollector(func() engine.Stats { return engine.Stats{} }))
	return d.names
}

// Every linkissuer_* metric the Cloud Monitoring dashboard, its alerts and
// the Grafana dashboard query exists in the worker (a histogram's _bucket,
// _sum and _count included), and both dashboards query the same metrics.
func TestDashboardsQueryRealMetrics(t *testing.T) {
	have := workerMetrics()
	if len(have) < 10 {
		t.Fatalf("found only %d worker metrics: %v", len(have), have)
	}
	refs := map[string][]string{}
	for _, rel := range []string{"terraform/modules/linkissuer/monitoring.tf", "grafana/linkissuer.json"} {
		data, err := os.ReadFile(repoPath("deploy/" + rel))
		if err != nil {
			t.Fatal(err)
		}
		names := metricRef.FindAllString(string(data), -1)
		if len(names) == 0 {
			t.Fatalf("%s queries no linkissuer_* metric", rel)
		}
		for _, n := range names {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suffix); ok && have[b] {
					base = b
				}
			}
			if !have[base] {
				t.Errorf("%s queries %s, which the worker does not export", rel, n)
			}
		}
		slices.Sort(names)
		refs[rel] = slices.Compact(names)
	}
	if tf, gf := refs["terraform/modules/linkissuer/monitoring.tf"], refs["grafana/linkissuer.json"]; !slices.Equal(tf, gf) {
		t.Errorf("the dashboards query different metrics:\nterraform %v\ngrafana   %v", tf, gf)
	}
}
