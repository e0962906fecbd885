package testkit

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricValue(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "c"})
	c.Add(3)
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g", Help: "g"}, []string{"route"})
	g.WithLabelValues("web").Set(-2)
	if got := MetricValue(t, c); got != 3 {
		t.Errorf("counter: %v, want 3", got)
	}
	if got := MetricValue(t, g.WithLabelValues("web")); got != -2 {
		t.Errorf("gauge child: %v, want -2", got)
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h"})
	r := &fatalRecorder{TB: t}
	MetricValue(r, h)
	if !strings.Contains(r.failed, "neither a counter nor a gauge") {
		t.Errorf("histogram: failure %q", r.failed)
	}
}
