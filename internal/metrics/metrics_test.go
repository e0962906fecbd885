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
