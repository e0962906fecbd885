package proxy

import (
	"time"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/route"
)

// RouteView is one HTTP route with its endpoints' live state.
type RouteView struct {
	Route       string         `json:"route"`
	Service     string         `json:"service"`
	Hosts       []string       `json:"hosts,omitempty"`
	Path        string         `json:"path"`
	Exact       bool           `json:"exact,omitempty"` // Path matches only itself, not the paths below it
	Strip       bool           `json:"strip,omitempty"`
	Priority    int            `json:"priority,omitempty"`
	Weight      int            `json:"weight"`
	Default     bool           `json:"default,omitempty"`
	Balancer    string         `json:"balancer"`
	Sticky      string         `json:"sticky,omitempty"`
	TLS         string         `json:"tls,omitempty"`
	TLSRedirect bool           `json:"tls_redirect,omitempty"`
	Timeout     string         `json:"timeout"`
	Policy      *route.Policy  `json:"policy,omitempty"`
	Health      *HealthView    `json:"health_check,omitempty"` // nil: passive health only
	Endpoints   []EndpointView `json:"endpoints"`
}

// HealthView is a route's active health check.
type HealthView struct {
	Path     string `json:"path"`
	Interval string `json:"interval"`
}

// EndpointView is one endpoint's live state.
type EndpointView struct {
	Addr      string `json:"addr"`
	Available bool   `json:"available"`
	// Down: the last active health check failed.
	Down bool `json:"down,omitempty"`
	// EjectedUntil is when passive health lets the endpoint back into
	// rotation; absent when it is not ejected.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Failures are the failed requests in a row since the last success;
	// Ejections the ejections in a row (each doubles the next one).
	Failures  int `json:"failures,omitempty"`
	Ejections int `json:"ejections,omitempty"`
	// Probing: back from an ejection, the endpoint takes one request at a
	// time until one succeeds.
	Probing   bool    `json:"probing,omitempty"`
	InFlight  int64   `json:"in_flight"`
	LatencyMS float64 `json:"latency_ewma_ms"`
}

// Describe returns the table's HTTP routes as the admin API shows them.
func (t *Table) Describe(now time.Time) []RouteView {
	v := []RouteView{}
	for _, tg := range t.targets {
		r := tg.route
		rv := RouteView{
			Route: tg.id, Service: r.Service, Hosts: r.Hosts, Path: routePath(r), Exact: r.Exact, Strip: r.Strip,
			Priority: r.Priority, Weight: r.Weight, Default: r.Default, Balancer: r.Balancer,
			Sticky: r.Sticky, TLS: r.TLS, TLSRedirect: r.TLSRedirect, Timeout: r.Timeout.String(), Policy: r.Policy,
			Endpoints: EndpointViews(tg.endpoints, now),
		}
		if r.HealthPath != "" {
			interval := r.HealthInterval
			if interval <= 0 {
				interval = route.DefaultHealthInterval
			}
			rv.Health = &HealthView{Path: r.HealthPath, Interval: interval.String()}
		}
		v = append(v, rv)
	}
	return v
}

// EndpointViews returns the live state of eps.
func EndpointViews(eps []*balancer.Endpoint, now time.Time) []EndpointView {
	v := make([]EndpointView, 0, len(eps))
	for _, e := range eps {
		h := e.Health(now)
		v = append(v, EndpointView{
			Addr: e.Addr, Available: e.Available(now), Down: h.Down, EjectedUntil: h.EjectedUntil,
			Failures: h.Failures, Ejections: h.Ejections, Probing: h.Probing, InFlight: e.InFlight(),
			LatencyMS: float64(e.Latency().Microseconds()) / 1000,
		})
	}
	return v
}
