package proxy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/swarmgate/swarmgate/balancer"
	sgmetrics "github.com/swarmgate/swarmgate/internal/metrics"
	"github.com/swarmgate/swarmgate/route"
)

// metrics are the proxy's Prometheus series. Label values are route IDs and
// service names from the table, never request data, so cardinality is bounded
// by the configuration: a route has one service, so adding "service" to a
// series labelled by route adds no series, and lets `swarmgate rollout` and
// dashboards sum by service. The series of a route that leaves the table are
// deleted with it.
//
// The request path touches no label map: the children of each route are
// looked up once per table, when it is installed (swapped), and found by the
// target pointer (series).
type metrics struct {
	requests       *prometheus.CounterVec   // route, service, code
	duration       *prometheus.HistogramVec // route, service
	upstreamErrors *prometheus.CounterVec   // route, service, reason
	retries        *prometheus.CounterVec   // route, service, result
	requestBytes   *prometheus.CounterVec   // route, service
	responseBytes  *prometheus.CounterVec   // route, service
	swaps          prometheus.Counter
	routes         prometheus.Gauge
	labelErrors    prometheus.Gauge
	connections    *prometheus.GaugeVec // listener
	tunnels        prometheus.Gauge
	clientResets   prometheus.Counter
	resetCloses    prometheus.Counter

	// table is the table in force, for the endpoint gauges read at scrape
	// time. Set by swapped, under the proxy's Install lock.
	table atomic.Pointer[Table]
	// none are the series of requests no route took (route and service
	// ""): 404s, and answers before the router.
	none *routeSeries
	// byRoute are the series of the routes of the tables built, by route
	// ID, kept across tables (a target built anew for a changed route takes
	// its route's) and deleted when their route leaves.
	mu      sync.Mutex
	byRoute map[string]*routeSeries
}

// Upstream error reasons and retry results: the values of the "reason" and
// "result" labels.
const (
	reasonConnect  = "connect"
	reasonProtocol = "protocol"
	reasonTimeout  = "timeout"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	rs := []string{"route", "service"}
	m := &metrics{
		requests: sgmetrics.NewCounterVec(reg, "swarmgate_http_requests_total",
			"HTTP requests answered, by route, service and status code.", "route", "service", "code"),
		duration: sgmetrics.NewHistogramVec(reg, "swarmgate_http_request_duration_seconds",
			"Time from request to the end of the response, by route and service.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, rs...),
		upstreamErrors: sgmetrics.NewCounterVec(reg, "swarmgate_upstream_errors_total",
			"Failed upstream attempts, by route, service and reason (connect, protocol, timeout).", "route", "service", "reason"),
		retries: sgmetrics.NewCounterVec(reg, "swarmgate_retries_total",
			"Retries on another endpoint, by route, service and result (allowed, or denied by the retry budget).", "route", "service", "result"),
		requestBytes: sgmetrics.NewCounterVec(reg, "swarmgate_http_request_bytes_total",
			"Request body bytes read from clients (tunnels: bytes from the client), by route and service.", rs...),
		responseBytes: sgmetrics.NewCounterVec(reg, "swarmgate_http_response_bytes_total",
			"Response body bytes sent to clients (tunnels: bytes to the client), by route and service.", rs...),
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
	m.none = m.newSeries(&target{route: &route.Route{}})
	m.byRoute = map[string]*routeSeries{}
	sgmetrics.Register(reg, &endpointCollector{m: m, now: time.Now})
	return m
}

// swapped records the installation of t: table gauges, and the deletion of
// the series of the routes gone, the route IDs t no longer has. With all,
// gone is every ID with series that t has no route of. The proxy's Install
// lock is held.
func (m *metrics) swapped(t *Table, labelErrors int, gone []string, all bool) {
	m.swaps.Inc()
	m.routes.Set(float64(len(t.targets)))
	m.labelErrors.Set(float64(labelErrors))
	m.table.Store(t)
	m.mu.Lock()
	defer m.mu.Unlock()
	if all {
		gone = gone[:0]
		for id := range m.byRoute {
			if !t.hasRoute(id) {
				gone = append(gone, id)
			}
		}
	}
	for _, id := range gone {
		delete(m.byRoute, id)
		m.forget(id)
	}
}

// seriesOf returns the series of tg's route, created on the route's first
// target: a route ID names its service, so same ID, same series. The table
// builder calls it once per target it builds.
func (m *metrics) seriesOf(tg *target) *routeSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.byRoute[tg.id]
	if s == nil {
		s = m.newSeries(tg)
		m.byRoute[tg.id] = s
	}
	return s
}

// forget deletes every series of route id.
func (m *metrics) forget(id string) {
	l := prometheus.Labels{"route": id}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.upstreamErrors.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.requestBytes.DeletePartialMatch(l)
	m.responseBytes.DeletePartialMatch(l)
}

// routeSeries are one route's children of the per-route vectors. They are
// created when the route first answers a request, not when it is built: an
// edge of 10,000 routes would otherwise create and export 10,000 histograms
// before its first request, and pay for it in every start and scrape.
//
// An edge holds one per route of its table (10,000 at scale), so it keeps
// only what a request needs: the retry and upstream-error counters, rare,
// are looked up by their labels when they count.
type routeSeries struct {
	route, service string
	codes          sync.Map // int status code -> prometheus.Counter
	answered       sync.Once
	m              *metrics
	duration       prometheus.Observer
	requestBytes   prometheus.Counter
	responseBytes  prometheus.Counter
	// endpoints are the route's swarmgate_route_endpoints series as last
	// scraped; nil before the first scrape (see endpointCollector).
	endpoints atomic.Pointer[endpointSeries]
}

// newSeries returns the series of tg's route; none exists before its first
// event (see routeSeries).
func (m *metrics) newSeries(tg *target) *routeSeries {
	id, svc := tg.id, tg.route.Service
	return &routeSeries{route: id, service: svc, m: m}
}

// answer counts one answered request: its status code, duration and body
// bytes each way.
func (s *routeSeries) answer(code int, elapsed time.Duration, reqBytes, respBytes int64) {
	s.answered.Do(func() {
		s.duration = s.m.duration.WithLabelValues(s.route, s.service)
		s.requestBytes = s.m.requestBytes.WithLabelValues(s.route, s.service)
		s.responseBytes = s.m.responseBytes.WithLabelValues(s.route, s.service)
	})
	s.code(code).Inc()
	s.duration.Observe(elapsed.Seconds())
	s.requestBytes.Add(float64(reqBytes))
	s.responseBytes.Add(float64(respBytes))
}

// series returns the children of tg's route, looked up when tg was built.
func (m *metrics) series(tg *target) *routeSeries {
	if tg.series != nil {
		return tg.series
	}
	return m.newSeries(tg)
}

// code returns the request counter of status code c.
func (s *routeSeries) code(c int) prometheus.Counter {
	if v, ok := s.codes.Load(c); ok {
		return v.(prometheus.Counter)
	}
	ctr := s.m.requests.WithLabelValues(s.route, s.service, codeString(c))
	s.codes.Store(c, ctr)
	return ctr
}

// upstreamError counts a failed upstream attempt of tg's route.
func (m *metrics) upstreamError(tg *target, reason string) {
	switch reason {
	case reasonConnect, reasonTimeout:
	default:
		reason = reasonProtocol
	}
	s := m.series(tg)
	m.upstreamErrors.WithLabelValues(s.route, s.service, reason).Inc()
}

// retried counts a retry of tg's route, allowed by the retry budget or not.
func (m *metrics) retried(tg *target, allowed bool) {
	result := "denied"
	if allowed {
		result = "allowed"
	}
	s := m.series(tg)
	m.retries.WithLabelValues(s.route, s.service, result).Inc()
}

// endpointCollector exports, at scrape time, how many endpoints of each
// route of the table in force are up, ejected by passive health, or down by
// the active health check: three series per route, whatever the number of
// tasks, and nothing on the request path.
//
// A scrape of an edge of 10,000 routes is 30,000 of these series, so they
// are not built per scrape: each route keeps the three metrics it last
// exported (routeSeries.endpoints), written by endpointMetric.Write from
// protobuf values built once, and builds new ones only when its counts
// change. What a scrape allocates for a route whose counts did not change
// is the registry's own (a dto.Metric per series and its checks).
type endpointCollector struct {
	m   *metrics
	now func() time.Time
}

var endpointsDesc = prometheus.NewDesc("swarmgate_route_endpoints",
	"Endpoints of each route of the table in force, by state: up (in rotation), ejected (passive health, for a backoff), down (failing its active health check).",
	[]string{"route", "service", "state"}, nil)

func (c *endpointCollector) Describe(ch chan<- *prometheus.Desc) { ch <- endpointsDesc }

func (c *endpointCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.m.table.Load()
	if t == nil {
		return
	}
	now := c.now()
	for _, tg := range t.targets {
		es := c.m.series(tg).endpointsOf(countEndpoints(tg.endpoints, now))
		for i := range es.metrics {
			ch <- &es.metrics[i]
		}
	}
}

// endpointCounts are a route's endpoints up, ejected and down, in the order
// of endpointStates.
type endpointCounts [3]int

// countEndpoints counts eps by state at now.
func countEndpoints(eps []*balancer.Endpoint, now time.Time) endpointCounts {
	var n endpointCounts
	for _, e := range eps {
		switch {
		case e.Available(now):
			n[0]++
		case e.Health(now).Down:
			n[2]++
		default:
			n[1]++
		}
	}
	return n
}

// endpointSeries are one route's three swarmgate_route_endpoints metrics for
// counts. It is not changed once stored in routeSeries.endpoints: scrapes
// running at once share it, and the registry and encoders only read it.
type endpointSeries struct {
	counts  endpointCounts
	labels  *[9]*dto.LabelPair // route, service and state of each state in turn; shared with the route's earlier endpointSeries
	metrics [3]endpointMetric
}

// endpointMetric is one series of an endpointSeries: a prometheus.Metric
// that writes values built beforehand instead of building them per scrape
// as a const metric does.
type endpointMetric struct {
	labels []*dto.LabelPair // sorted by name: route, service, state
	gauge  *dto.Gauge
}

func (m *endpointMetric) Desc() *prometheus.Desc { return endpointsDesc }

// Write shares m's label pairs and gauge with out, as client_golang's own
// metrics share their label pairs: the registry and the encoders do not
// change what they are given.
func (m *endpointMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	out.Gauge = m.gauge
	return nil
}

// endpointStates are the values of the "state" label, as label pairs shared
// by every route.
var endpointStates = func() (p [3]*dto.LabelPair) {
	for i, v := range []string{"up", "ejected", "down"} {
		p[i] = &dto.LabelPair{Name: new("state"), Value: new(v)}
	}
	return p
}()

// smallGauges are gauges of the values 0 to 63, shared by every route whose
// count is one of them.
var smallGauges = func() (g [64]*dto.Gauge) {
	for i := range g {
		g[i] = &dto.Gauge{Value: new(float64(i))}
	}
	return g
}()

func gaugeOf(n int) *dto.Gauge {
	if n >= 0 && n < len(smallGauges) {
		return smallGauges[n]
	}
	return &dto.Gauge{Value: new(float64(n))}
}

// endpointsOf returns s's route's endpoint series for counts n: the ones
// last returned if their counts are n, else new ones, kept for the next
// scrape. Scrapes may call it at once: each gets series of the counts it
// passed, and the last stored is kept.
func (s *routeSeries) endpointsOf(n endpointCounts) *endpointSeries {
	prev := s.endpoints.Load()
	if prev != nil && prev.counts == n {
		return prev
	}
	es := &endpointSeries{counts: n}
	if prev != nil {
		es.labels = prev.labels
	} else {
		es.labels = s.endpointLabels()
	}
	for i := range es.metrics {
		es.metrics[i] = endpointMetric{labels: es.labels[3*i : 3*i+3 : 3*i+3], gauge: gaugeOf(n[i])}
	}
	s.endpoints.Store(es)
	return es
}

// endpointLabels builds the label pairs of s's route's endpoint series. A
// label value must be UTF-8 for the registry to export the series; a route
// ID or service that is not has its invalid bytes replaced.
func (s *routeSeries) endpointLabels() *[9]*dto.LabelPair {
	valid := func(v string) *string {
		if !utf8.ValidString(v) {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
		return &v
	}
	r := &dto.LabelPair{Name: new("route"), Value: valid(s.route)}
	svc := &dto.LabelPair{Name: new("service"), Value: valid(s.service)}
	l := new([9]*dto.LabelPair)
	for i, st := range endpointStates {
		l[3*i], l[3*i+1], l[3*i+2] = r, svc, st
	}
	return l
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
