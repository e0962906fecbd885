package rollout

import (
	"bytes"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// edgeMetrics renders a registry holding the edge's two series the way
// /metrics serves them.
func edgeMetrics(t *testing.T, observe func(req *prometheus.CounterVec, dur *prometheus.HistogramVec)) *bytes.Buffer {
	t.Helper()
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: requestsMetric, Help: "h"}, []string{"route", "service", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: durationMetric, Help: "h",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"route", "service"})
	reg.MustRegister(req, dur)
	observe(req, dur)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return &b
}

func TestParseMetrics(t *testing.T) {
	text := edgeMetrics(t, func(req *prometheus.CounterVec, dur *prometheus.HistogramVec) {
		req.WithLabelValues("shop/web", "web-v1", "200").Add(90)
		req.WithLabelValues("shop/web", "web-v1", "502").Add(10)
		req.WithLabelValues("shop/api", "web-v1", "404").Add(5) // a second route of the service
		req.WithLabelValues("shop/web", "web-v2", "200").Add(7)
		req.WithLabelValues("other", "other", "500").Add(3)
		for range 95 {
			dur.WithLabelValues("shop/web", "web-v1").Observe(0.02)
		}
		for range 5 {
			dur.WithLabelValues("shop/web", "web-v1").Observe(3)
		}
		for range 7 {
			dur.WithLabelValues("shop/web", "web-v2").Observe(0.004)
		}
	})
	s, err := ParseMetrics(text, "web-v1", "web-v2", "absent")
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := s["web-v1"], s["web-v2"]
	if v1.Requests != 105 || v1.Errors != 10 || v2.Requests != 7 || v2.Errors != 0 {
		t.Fatalf("web-v1 %+v, web-v2 %+v", v1, v2)
	}
	if _, ok := s["absent"]; !ok || s["absent"].Requests != 0 {
		t.Errorf("absent service: %+v", s["absent"])
	}
	if _, ok := s["other"]; ok {
		t.Error("a service not asked for was parsed")
	}
	// 95 of 100 at 20 ms, 5 at 3 s: p50 within the 10-25 ms bucket, p99 in 2.5-5 s.
	if p := v1.Quantile(0.5); p <= 0.01 || p > 0.025 {
		t.Errorf("p50 = %v", p)
	}
	if p := v1.Quantile(0.99); p <= 2.5 || p > 5 {
		t.Errorf("p99 = %v", p)
	}
	if p := v2.Quantile(0.99); p <= 0.0025 || p > 0.005 {
		t.Errorf("web-v2 p99 = %v", p)
	}
	if p := s["absent"].Quantile(0.99); !math.IsNaN(p) {
		t.Errorf("p99 without requests = %v", p)
	}
}

func TestSince(t *testing.T) {
	before := Stats{Requests: 100, Errors: 2, Buckets: []Bucket{{0.1, 90}, {math.Inf(1), 100}}}
	after := Stats{Requests: 150, Errors: 3, Buckets: []Bucket{{0.1, 130}, {math.Inf(1), 150}}}
	d := after.Since(before)
	if d.Requests != 50 || d.Errors != 1 || d.Buckets[0].Count != 40 || d.Buckets[1].Count != 50 {
		t.Fatalf("delta %+v", d)
	}
	// The edge restarted: its counters start again from zero.
	restarted := Stats{Requests: 20, Buckets: []Bucket{{0.1, 20}, {math.Inf(1), 20}}}
	if d := restarted.Since(before); d.Requests != 20 || d.Buckets[1].Count != 20 {
		t.Fatalf("delta after a restart %+v", d)
	}
	if r := d.ErrorRatio(); r != 0.02 {
		t.Errorf("error ratio %v", r)
	}
	if r := (Stats{}).ErrorRatio(); r != 0 {
		t.Errorf("error ratio without requests %v", r)
	}
}
