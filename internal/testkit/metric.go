package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricValue reads one counter or gauge series: a plain Counter or Gauge,
// or a vector's child (WithLabelValues). Any other kind of metric fails the
// test.
func MetricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatalf("testkit: read metric %s: %v", m.Desc(), err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("testkit: metric %s is neither a counter nor a gauge", m.Desc())
	return 0
}
