package proxy

import (
	"time"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/route"
)

// RouteView is one HTTP route with its endpoints' live state.
type RouteView struct {
	Route     string         `json:"route"`
	Service   string         `json:"service"`
	Hosts     []string       `json:"hosts,omitempty"`
	Path      string         `json:"path"`
	Strip     bool           `json:"strip,omitempty"`
	Priority  int            `json:"priority,omitempty"`
	Weight    int            `json:"weight"`
	Default   bool           `json:"default,omitempty"`
	Balancer  string         `json:"balancer"`
	Sticky    string         `json:"sticky,omitempty"`
	TLS       string         `json:"tls,omitempty"`
	Timeout   string         `json:"timeout"`
	Policy    *route.Policy  `json:"policy,omitempty"`
	Endpoints []EndpointView `json:"endpoints"`
}

// EndpointView is one endpoint's live state.
type EndpointView struct {
	Addr      string  `json:"addr"`
	Available bool    `json:"available"`
	InFlight  int64   `json:"in_flight"`
	LatencyMS float64 `json:"latency_ewma_ms"`
}

// Describe returns the table's HTTP routes as the admin API shows them.
func (t *Table) Describe(now time.Time) []RouteView {
	v := []RouteView{}
	for _, tg := range t.targets {
		r := tg.route
		v = append(v, RouteView{
			Route: tg.id, Service: r.Service, Hosts: r.Hosts, Path: routePrefix(r.Path), Strip: r.Strip,
			Priority: r.Priority, Weight: r.Weight, Default: r.Default, Balancer: r.Balancer,
			Sticky: r.Sticky, TLS: r.TLS, Timeout: r.Timeout.String(), Policy: r.Policy,
			Endpoints: EndpointViews(tg.endpoints, now),
		})
	}
	return v
}

// EndpointViews returns the live state of eps.
func EndpointViews(eps []*balancer.Endpoint, now time.Time) []EndpointView {
	v := make([]EndpointView, 0, len(eps))
	for _, e := range eps {
		v = append(v, EndpointView{
			Addr: e.Addr, Available: e.Available(now), InFlight: e.InFlight(),
			LatencyMS: float64(e.Latency().Microseconds()) / 1000,
		})
	}
	return v
}
