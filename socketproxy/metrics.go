package socketproxy

import (
	"github.com/prometheus/client_golang/prometheus"

	sgmetrics "github.com/swarmgate/swarmgate/internal/metrics"
)

// metrics are the socket-proxy's Prometheus series. Label values come from
// the fixed Endpoint and reason sets, never from request data.
type metrics struct {
	requests        *prometheus.CounterVec // decision, endpoint
	denied          *prometheus.CounterVec // reason
	upstream        *prometheus.CounterVec // endpoint
	coalesced       *prometheus.CounterVec // endpoint
	subscribers     prometheus.Gauge
	eventStreams    prometheus.Gauge
	slowSubscribers prometheus.Counter
	resubscribes    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		requests: sgmetrics.NewCounterVec(reg, "swarmgate_socketproxy_requests_total",
			"Requests received, by decision (allowed, denied) and allow-list endpoint (other when the path is not on the list).", "decision", "endpoint"),
		denied: sgmetrics.NewCounterVec(reg, "swarmgate_socketproxy_denied_total",
			"Denied requests, by reason.", "reason"),
		upstream: sgmetrics.NewCounterVec(reg, "swarmgate_socketproxy_upstream_requests_total",
			"Requests sent to the Docker Engine API, by endpoint.", "endpoint"),
		coalesced: sgmetrics.NewCounterVec(reg, "swarmgate_socketproxy_coalesced_requests_total",
			"Requests answered from an identical upstream request already in flight, by endpoint.", "endpoint"),
		subscribers: sgmetrics.NewGauge(reg, "swarmgate_socketproxy_event_subscribers",
			"Clients watching /events."),
		eventStreams: sgmetrics.NewGauge(reg, "swarmgate_socketproxy_event_streams",
			"Open upstream /events streams (shared and unshared)."),
		slowSubscribers: sgmetrics.NewCounter(reg, "swarmgate_socketproxy_event_subscribers_dropped_total",
			"Event subscribers disconnected because they fell behind."),
		resubscribes: sgmetrics.NewCounter(reg, "swarmgate_socketproxy_event_resubscribes_total",
			"Times a shared upstream /events stream was lost and reopened."),
	}
}
