package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmgate/swarmgate/balancer"
)

// Admin serves the admin listener: /metrics, /healthz, /readyz and
// /api/routes. It is a separate listener from traffic so that it can be
// firewalled.
type Admin struct {
	proxy    *Proxy
	gatherer prometheus.Gatherer
	ready    atomic.Bool // set once the first table from every source is in force
	draining atomic.Bool // set on shutdown: /readyz answers 503
	pprof    bool
}

// NewAdmin returns the admin handler for p. g is the registry the metrics
// were registered on.
func NewAdmin(p *Proxy, g prometheus.Gatherer) *Admin {
	return &Admin{proxy: p, gatherer: g}
}

// EnablePprof serves net/http/pprof under /debug/pprof/ on the admin
// listener. Off by default: profiles reveal internals.
func (a *Admin) EnablePprof() { a.pprof = true }

// SetReady marks the edge ready (or not) to receive traffic.
func (a *Admin) SetReady(ok bool) { a.ready.Store(ok) }

// Ready reports whether SetReady(true) was called.
func (a *Admin) Ready() bool { return a.ready.Load() }

// Drain makes /readyz fail so load balancers stop sending new traffic.
func (a *Admin) Drain() { a.draining.Store(true) }

func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case a.draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !a.ready.Load():
			http.Error(w, "no routing table yet", http.StatusServiceUnavailable)
		default:
			w.Write([]byte("ready\n"))
		}
	})
	if a.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /api/routes", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(a.proxy.Table().Describe(a.proxy.now()))
	})
	return mux
}

// TableView is the JSON form of a Table for /api/routes and `swarmgate routes`.
type TableView struct {
	Built    time.Time        `json:"built"`
	Routes   []RouteView      `json:"routes"`
	L4       []L4View         `json:"l4,omitempty"`
	Errors   []LabelErrorView `json:"label_errors"`
	Rejected []string         `json:"rejected,omitempty"`
}

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
	Endpoints []EndpointView `json:"endpoints"`
}

// L4View is one TCP port or SNI passthrough route.
type L4View struct {
	Route     string         `json:"route"`
	Service   string         `json:"service"`
	Port      int            `json:"tcp_port,omitempty"`
	SNI       []string       `json:"sni,omitempty"`
	Endpoints []EndpointView `json:"endpoints"`
}

// EndpointView is one endpoint's live state.
type EndpointView struct {
	Addr      string  `json:"addr"`
	Available bool    `json:"available"`
	InFlight  int64   `json:"in_flight"`
	LatencyMS float64 `json:"latency_ewma_ms"`
}

// LabelErrorView is one skipped service.
type LabelErrorView struct {
	Service string `json:"service"`
	Label   string `json:"label"`
	Value   string `json:"value"`
	Reason  string `json:"reason"`
}

// Describe returns the table as the admin API shows it.
func (t *Table) Describe(now time.Time) TableView {
	v := TableView{Built: t.built, Routes: []RouteView{}, Errors: []LabelErrorView{}, Rejected: t.errors}
	for _, tg := range t.targets {
		r := tg.route
		rv := RouteView{
			Route: tg.id, Service: r.Service, Hosts: r.Hosts, Path: normalizePrefix(r.Path), Strip: r.Strip,
			Priority: r.Priority, Weight: r.Weight, Default: r.Default, Balancer: r.Balancer,
			Sticky: r.Sticky, TLS: r.TLS, Timeout: r.Timeout.String(), Endpoints: []EndpointView{},
		}
		rv.Endpoints = endpointViews(tg.endpoints, now)
		v.Routes = append(v.Routes, rv)
	}
	for _, lr := range t.l4routes {
		lv := L4View{Route: lr.route.ID, Service: lr.route.Service, Port: lr.port, SNI: lr.sni, Endpoints: endpointViews(lr.route.Endpoints, now)}
		v.L4 = append(v.L4, lv)
	}
	for _, e := range t.config.Errors {
		v.Errors = append(v.Errors, LabelErrorView{e.Service, e.Label, e.Value, e.Reason})
	}
	sort.Slice(v.Errors, func(i, j int) bool { return v.Errors[i].Service < v.Errors[j].Service })
	return v
}

func endpointViews(eps []*balancer.Endpoint, now time.Time) []EndpointView {
	v := make([]EndpointView, 0, len(eps))
	for _, e := range eps {
		v = append(v, EndpointView{
			Addr: e.Addr, Available: e.Available(now), InFlight: e.InFlight(),
			LatencyMS: float64(e.Latency().Microseconds()) / 1000,
		})
	}
	return v
}
