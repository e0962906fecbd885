// Package metrics builds and registers Prometheus collectors the one way
// every swarmgate package does. Registries are passed in, never global, and a
// registration mistake is treated as the wiring bug it is: a panic at start.
package metrics

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers cs on reg. A nil reg means the caller exports no
// metrics: the collectors still count, nobody reads them.
//
// A registration error (a name registered twice, or descriptors that
// clash) can only come from how the program is wired, never from input,
// and every start-up test finds it; so Register panics, naming the metrics
// of the collector that failed, rather than return an error that each
// constructor would have to carry.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) {
	if reg == nil {
		return
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			panic(fmt.Sprintf("metrics: registering %s: %v", names(c), err))
		}
	}
}

// names lists the metric names c describes, for the panic message.
func names(c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	var out []string
	for d := range ch {
		// Desc has no accessor for its name; its String form starts with it.
		s := d.String()
		if _, rest, ok := strings.Cut(s, "fqName: "); ok {
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				s, _ = strconv.Unquote(q)
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return fmt.Sprintf("a collector of type %T", c)
	}
	return strings.Join(out, ", ")
}

// The constructors below build one collector from its full name (swarmgate_
// prefix included, so that the name in the code is the name on /metrics),
// its help text and its label names, and register it on reg with Register.

// NewCounter returns a counter registered on reg.
func NewCounter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	return registered(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// NewCounterVec returns a counter vector with labels, registered on reg.
func NewCounterVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	return registered(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// NewGauge returns a gauge registered on reg.
func NewGauge(reg prometheus.Registerer, name, help string) prometheus.Gauge {
	return registered(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// NewGaugeVec returns a gauge vector with labels, registered on reg.
func NewGaugeVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.GaugeVec {
	return registered(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// NewHistogram returns a histogram with the given bucket upper bounds,
// registered on reg.
func NewHistogram(reg prometheus.Registerer, name, help string, buckets []float64) prometheus.Histogram {
	return registered(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// NewHistogramVec returns a histogram vector with the given bucket upper
// bounds and labels, registered on reg.
func NewHistogramVec(reg prometheus.Registerer, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	opts := prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}
	return registered(reg, prometheus.NewHistogramVec(opts, labels))
}

func registered[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	Register(reg, c)
	return c
}
