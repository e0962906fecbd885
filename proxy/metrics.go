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
	clientResets   prometheus.Counter
	resetCloses    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		requests: sgmetrics.NewCounterVec(reg, "swarmgate_http_requests_total",
			"HTTP requests answered, by route, service and status code.", "route", "service", "code"),
		duration: sgmetrics.NewHistogramVec(reg, "swarmgate_http_request_duration_seconds",
			"Time from request to the end of the response, by route.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "route"),
		upstreamErrors: sgmetrics.NewCounterVec(reg, "swarmgate_upstream_errors_total",
			"Failed upstream attempts, by route and reason (connect, protocol, timeout).", "route", "reason"),
		retries: sgmetrics.NewCounterVec(reg, "swarmgate_retries_total",
			"Retries on another endpoint, by route and result (allowed, or denied by the retry budget).", "route", "result"),
		swaps:  sgmetrics.NewCounter(reg, "swarmgate_table_swaps_total", "Routing tables built and swapped in."),
		routes: sgmetrics.NewGauge(reg, "swarmgate_table_routes", "HTTP routes in the table in force."),
		labelErrors: sgmetrics.NewGauge(reg, "swarmgate_label_errors",
			"Services skipped because of invalid labels in the configuration in force."),
		connections: sgmetrics.NewGaugeVec(reg, "swarmgate_open_connections",
			"Client connections open, by listener.", "listener"),
		tunnels: sgmetrics.NewGauge(reg, "swarmgate_open_tunnels",
			"Upgraded connections (WebSocket and others) open."),
		clientResets: sgmetrics.NewCounter(reg, "swarmgate_http_client_resets_total",
			"HTTP/2 streams the client reset before their response ended."),
		resetCloses: sgmetrics.NewCounter(reg, "swarmgate_http_reset_flood_closes_total",
			"Client connections closed for resetting more streams than the budget allows (rapid reset)."),
	}
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
