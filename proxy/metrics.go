package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	sgmetrics "github.com/swarmgate/swarmgate/internal/metrics"
)

// metrics are the proxy's Prometheus series. Label values are route IDs and
// service names from the table, never request data, so cardinality is bounded
// by the configuration.
type metrics struct {
	requests       *prometheus.CounterVec   // route, service, code
	duration       *prometheus.HistogramVec // route
	upstreamErrors *prometheus.CounterVec   // route, reason
	retries        *prometheus.CounterVec   // route, result
	swaps          prometheus.Counter
	routes         prometheus.Gauge
	labelErrors    prometheus.Gauge
	connections    *prometheus.GaugeVec // listener
	tunnels        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_http_requests_total",
			Help: "HTTP requests answered, by route, service and status code.",
		}, []string{"route", "service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "swarmgate_http_request_duration_seconds",
			Help:    "Time from request to the end of the response, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_upstream_errors_total",
			Help: "Failed upstream attempts, by route and reason (connect, protocol, timeout).",
		}, []string{"route", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_retries_total",
			Help: "Retries on another endpoint, by route and result (allowed, or denied by the retry budget).",
		}, []string{"route", "result"}),
		swaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmgate_table_swaps_total",
			Help: "Routing tables built and swapped in.",
		}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarmgate_table_routes",
			Help: "HTTP routes in the table in force.",
		}),
		labelErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarmgate_label_errors",
			Help: "Services skipped because of invalid labels in the configuration in force.",
		}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "swarmgate_open_connections",
			Help: "Client connections open, by listener.",
		}, []string{"listener"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarmgate_open_tunnels",
			Help: "Upgraded connections (WebSocket and others) open.",
		}),
	}
	sgmetrics.Register(reg, m.requests, m.duration, m.upstreamErrors, m.retries, m.swaps, m.routes,
		m.labelErrors, m.connections, m.tunnels)
	return m
}

func (m *metrics) swapped(t *Table, labelErrors int) {
	m.swaps.Inc()
	m.routes.Set(float64(len(t.targets)))
	m.labelErrors.Set(float64(labelErrors))
}

func (m *metrics) upstreamError(tg *target, reason string) {
	m.upstreamErrors.WithLabelValues(tg.id, reason).Inc()
}

// codes holds the decimal strings of status codes, so that counting a request
// does not format one.
var codes = func() (c [600]string) {
	for i := range c {
		c[i] = strconv.Itoa(i)
	}
	return c
}()

func codeString(code int) string {
	if code >= 0 && code < len(codes) {
		return codes[code]
	}
	return strconv.Itoa(code)
}
