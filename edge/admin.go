package edge

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmgate/swarmgate/proxy"
)

// Admin serves the admin listener: /metrics, /healthz, /readyz and
// /api/routes. It is a separate listener from traffic so that it can be
// firewalled.
type Admin struct {
	edge     *Edge
	gatherer prometheus.Gatherer
	now      func() time.Time
	ready    atomic.Bool // set once the first table from every source is in force
	draining atomic.Bool // set on shutdown: /readyz answers 503
	pprof    bool
}

// NewAdmin returns the admin handler for e. g is the registry the metrics
// were registered on.
func NewAdmin(e *Edge, g prometheus.Gatherer) *Admin {
	return &Admin{edge: e, gatherer: g, now: e.c.Now}
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

// Handler returns the admin API.
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
		enc.Encode(a.edge.Snapshot().Describe(a.now()))
	})
	return mux
}

// TableView is the JSON form of a Snapshot for /api/routes and `swarmgate routes`.
type TableView struct {
	Built    time.Time         `json:"built"`
	Routes   []proxy.RouteView `json:"routes"`
	L4       []L4View          `json:"l4,omitempty"`
	Errors   []LabelErrorView  `json:"label_errors"`
	Rejected []string          `json:"rejected,omitempty"`
}

// L4View is one TCP port or SNI passthrough route.
type L4View struct {
	Route     string               `json:"route"`
	Service   string               `json:"service"`
	Port      int                  `json:"tcp_port,omitempty"`
	SNI       []string             `json:"sni,omitempty"`
	Endpoints []proxy.EndpointView `json:"endpoints"`
}

// LabelErrorView is one skipped service.
type LabelErrorView struct {
	Service string `json:"service"`
	Label   string `json:"label"`
	Value   string `json:"value"`
	Reason  string `json:"reason"`
}

// Describe returns the snapshot as the admin API shows it.
func (s *Snapshot) Describe(now time.Time) TableView {
	v := TableView{Built: s.Built, Routes: s.HTTP.Describe(now), Errors: []LabelErrorView{}, Rejected: s.rejected}
	for _, e := range s.l4entries {
		v.L4 = append(v.L4, L4View{Route: e.Route.ID, Service: e.Route.Service, Port: e.Port, SNI: e.SNI,
			Endpoints: proxy.EndpointViews(e.Route.Endpoints, now)})
	}
	for _, e := range s.Config.Errors {
		v.Errors = append(v.Errors, LabelErrorView{e.Service, e.Label, e.Value, e.Reason})
	}
	sort.Slice(v.Errors, func(i, j int) bool { return v.Errors[i].Service < v.Errors[j].Service })
	return v
}
