package l4

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	sgmetrics "github.com/swarmgate/swarmgate/internal/metrics"
)

// metrics are the engine's Prometheus series. Route labels come from the
// table, never from client data, so cardinality is bounded by configuration.
type metrics struct {
	open          *prometheus.GaugeVec   // route
	bytes         *prometheus.CounterVec // route, direction
	connectErrors *prometheus.CounterVec // route
	noEndpoint    *prometheus.CounterVec // route
	idleClosed    *prometheus.CounterVec // route
	peekFailures  *prometheus.CounterVec // reason
	proxyErrors   prometheus.Counter

	// mu guards routes: each route's children are resolved once, not per
	// connection (WithLabelValues hashes its labels on every call).
	mu     sync.Mutex
	routes map[string]*routeMetrics
}

// routeMetrics are one route's series.
type routeMetrics struct {
	open              prometheus.Gauge
	bytesIn, bytesOut prometheus.Counter
	connectErrors     prometheus.Counter
	noEndpoint        prometheus.Counter
	idleClosed        prometheus.Counter
}

// Peek failure reasons (label values of swarmgate_l4_peek_failures_total).
const (
	peekTimeout   = "timeout"
	peekTruncated = "truncated"
	peekTooLarge  = "oversized"
	peekNotTLS    = "not_tls"
	peekMalformed = "malformed"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		open: sgmetrics.NewGaugeVec(reg, "swarmgate_l4_open_connections",
			"L4 connections being spliced (or dialed), by route.", "route"),
		bytes: sgmetrics.NewCounterVec(reg, "swarmgate_l4_bytes_total",
			"Bytes spliced, by route and direction (in: client to backend, out: backend to client), counted when each direction ends.", "route", "direction"),
		connectErrors: sgmetrics.NewCounterVec(reg, "swarmgate_l4_connect_errors_total",
			"Failed connects to a route's endpoints (each is retried on another endpoint).", "route"),
		noEndpoint: sgmetrics.NewCounterVec(reg, "swarmgate_l4_unrouted_connections_total",
			"Connections closed because no endpoint of their route could be reached.", "route"),
		idleClosed: sgmetrics.NewCounterVec(reg, "swarmgate_l4_idle_closed_total",
			"Connections closed by the route's idle timeout.", "route"),
		peekFailures: sgmetrics.NewCounterVec(reg, "swarmgate_l4_peek_failures_total",
			"Connections on the TLS listener whose ClientHello could not be read, by reason (timeout, truncated, oversized, not_tls, malformed).", "reason"),
		proxyErrors: sgmetrics.NewCounter(reg, "swarmgate_l4_proxy_protocol_errors_total",
			"Connections from trusted proxies closed for a missing or malformed PROXY header."),
		routes: make(map[string]*routeMetrics),
	}
}

func (m *metrics) route(r *Route) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm := m.routes[r.ID]; rm != nil {
		return rm
	}
	rm := &routeMetrics{
		open:          m.open.WithLabelValues(r.ID),
		bytesIn:       m.bytes.WithLabelValues(r.ID, "in"),
		bytesOut:      m.bytes.WithLabelValues(r.ID, "out"),
		connectErrors: m.connectErrors.WithLabelValues(r.ID),
		noEndpoint:    m.noEndpoint.WithLabelValues(r.ID),
		idleClosed:    m.idleClosed.WithLabelValues(r.ID),
	}
	m.routes[r.ID] = rm
	return rm
}
