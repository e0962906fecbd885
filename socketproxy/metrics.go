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
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_socketproxy_requests_total",
			Help: "Requests received, by decision (allowed, denied) and allow-list endpoint (other when the path is not on the list).",
		}, []string{"decision", "endpoint"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_socketproxy_denied_total",
			Help: "Denied requests, by reason.",
		}, []string{"reason"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_socketproxy_upstream_requests_total",
			Help: "Requests sent to the Docker Engine API, by endpoint.",
		}, []string{"endpoint"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_socketproxy_coalesced_requests_total",
			Help: "Requests answered from an identical upstream request already in flight, by endpoint.",
		}, []string{"endpoint"}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarmgate_socketproxy_event_subscribers",
			Help: "Clients watching /events.",
		}),
		eventStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarmgate_socketproxy_event_streams",
			Help: "Open upstream /events streams (shared and unshared).",
		}),
		slowSubscribers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmgate_socketproxy_event_subscribers_dropped_total",
			Help: "Event subscribers disconnected because they fell behind.",
		}),
		resubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmgate_socketproxy_event_resubscribes_total",
			Help: "Times a shared upstream /events stream was lost and reopened.",
		}),
	}
	sgmetrics.Register(reg, m.requests, m.denied, m.upstream, m.coalesced, m.subscribers,
		m.eventStreams, m.slowSubscribers, m.resubscribes)
	return m
}
