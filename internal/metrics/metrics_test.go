package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegister(t *testing.T) {
	newCounter := func() prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "swarmgate_test_total", Help: "A test counter."})
	}
	newVec := func() *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "swarmgate_test_gauge", Help: "A test gauge."}, []string{"route"})
	}

	// No registry: nothing happens, and the collectors still work.
	c := newCounter()
	Register(nil, c, newVec())
	c.Inc()

	reg := prometheus.NewRegistry()
	Register(reg, newCounter(), newVec())
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 { // the vector has no series yet
		t.Fatalf("gathered %d families, %v", len(mfs), err)
	}

	for _, tt := range []struct {
		name string
		c    prometheus.Collector
		want string
	}{
		{"duplicate counter", newCounter(), "swarmgate_test_total"},
		{"duplicate vector", newVec(), "swarmgate_test_gauge"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "metrics: registering "+tt.want+": ") {
					t.Fatalf("panic %q, want one naming %s", msg, tt.want)
				}
			}()
			Register(reg, tt.c)
		})
	}
}

func TestConstructors(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewCounter(reg, "swarmgate_test_total", "A counter.").Inc()
	NewCounterVec(reg, "swarmgate_test_vec_total", "A counter vector.", "route").WithLabelValues("a").Inc()
	NewGauge(reg, "swarmgate_test_gauge", "A gauge.").Set(1)
	NewGaugeVec(reg, "swarmgate_test_gauge_vec", "A gauge vector.", "route").WithLabelValues("a").Set(1)
	NewHistogram(reg, "swarmgate_test_seconds", "A histogram.", []float64{1, 2}).Observe(1)
	NewHistogramVec(reg, "swarmgate_test_vec_seconds", "A histogram vector.", []float64{1}, "route").WithLabelValues("a").Observe(1)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 6 {
		t.Fatalf("gathered %d families, %v", len(mfs), err)
	}
	if b := mfs[2].GetMetric()[0].GetHistogram().GetBucket(); len(b) != 2 || b[1].GetUpperBound() != 2 {
		t.Errorf("%s buckets: %v", mfs[2].GetName(), b)
	}

	// Nil registry: the collectors work and nothing is exported.
	NewCounter(nil, "swarmgate_test_total", "A counter.").Inc()

	defer func() {
		if msg, _ := recover().(string); !strings.HasPrefix(msg, "metrics: registering swarmgate_test_gauge: ") {
			t.Fatalf("panic %q, want one naming swarmgate_test_gauge", msg)
		}
	}()
	NewGauge(reg, "swarmgate_test_gauge", "A gauge.")
}
