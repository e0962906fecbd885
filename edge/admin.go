package edge

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// DefaultAdminAllow are the networks the admin listener answers by default:
// loopback and the private ranges (the overlay networks Prometheus scrapes
// from), never the public internet.
var DefaultAdminAllow = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
}

// AdminOptions make the admin listener safe wherever it is published.
type AdminOptions struct {
	// Allow are the client networks that may read anything beyond /healthz
	// and /readyz (which answer everyone: load balancers check them). If
	// nil, DefaultAdminAllow.
	Allow []netip.Prefix
	// Token, if set, must be sent as "Authorization: Bearer TOKEN" for
	// anything beyond /healthz and /readyz. It never appears in a response
	// or a log.
	Token string
	// Pprof serves net/http/pprof under /debug/pprof/: to loopback clients,
	// or to any allowed client that presents the Token.
	Pprof bool
}

// Admin serves the admin listener: the status page at /, /metrics,
// /healthz, /readyz and /api/routes. It is a separate listener from traffic so that it can be
// firewalled, and it checks who asks (AdminOptions) whatever the firewall.
type Admin struct {
	edge     *Edge
	gatherer prometheus.Gatherer
	now      func() time.Time
	opts     AdminOptions
	sources  []route.Source // reported by /readyz and /api/sources
	certs    Certificates   // listed by the status page; nil is none
	ready    atomic.Bool    // set once the first table from every source is in force
	draining atomic.Bool    // set on shutdown: /readyz answers 503

	mu   sync.Mutex   // guards seen
	seen []sourceSeen // the last Config of each of sources, by index
}

// sourceSeen is when a source last delivered a Config and what change it
// said the Config brings.
type sourceSeen struct {
	updated, changed, applied time.Time
}

// NewAdmin returns the admin handler for e. g is the registry the metrics
// were registered on.
func NewAdmin(e *Edge, g prometheus.Gatherer, o AdminOptions) *Admin {
	if o.Allow == nil {
		o.Allow = DefaultAdminAllow
	}
	return &Admin{edge: e, gatherer: g, now: e.c.Now, opts: o}
}

// ReportSources makes /readyz and /api/sources report the state of those
// of srcs that are route.Reporters. Call it before Handler.
func (a *Admin) ReportSources(srcs []route.Source) {
	a.sources = srcs
	a.seen = make([]sourceSeen, len(srcs))
}

// track wraps the update callback of source i (of those ReportSources
// was given) so that /api/sources and the status page say when it last
// delivered a Config and how long its change took to reach the table.
func (a *Admin) track(i int, update func(route.Config)) func(route.Config) {
	return func(c route.Config) {
		got := a.now()
		update(c) // builds and swaps the table in
		applied := a.now()
		a.mu.Lock()
		if i < len(a.seen) {
			a.seen[i] = sourceSeen{updated: got, changed: c.Changed, applied: applied}
		}
		a.mu.Unlock()
	}
}

// SetReady marks the edge ready (or not) to receive traffic.
func (a *Admin) SetReady(ok bool) { a.ready.Store(ok) }

// Ready reports whether SetReady(true) was called.
func (a *Admin) Ready() bool { return a.ready.Load() }

// Drain makes /readyz fail so load balancers stop sending new traffic.
func (a *Admin) Drain() { a.draining.Store(true) }

// Handler returns the admin API.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.guard(promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{}), false))
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
			// Ready stays ready while a source is away: the last table is
			// in force and serves. Which source, and why, is for
			// /api/sources: this answer goes to anyone.
			w.Write([]byte("ready\n"))
			for _, s := range a.sources {
				if r, ok := s.(route.Reporter); ok && !r.Status().Connected {
					w.Write([]byte("stale: a route source is unreachable; the last table is in force\n"))
					break
				}
			}
		}
	})
	mux.Handle("GET /api/sources", a.guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a.sourceViews())
	}), false))
	if a.opts.Pprof {
		mux.Handle("/debug/pprof/", a.guard(http.HandlerFunc(pprof.Index), true))
		mux.Handle("/debug/pprof/profile", a.guard(http.HandlerFunc(pprof.Profile), true))
		mux.Handle("/debug/pprof/trace", a.guard(http.HandlerFunc(pprof.Trace), true))
	}
	mux.Handle("GET /api/routes", a.guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a.edge.Snapshot().Describe(a.now()))
	}), false))
	a.statusHandlers(mux, func(h http.Handler) http.Handler { return a.guard(h, false) })
	return mux
}

// guard answers 403 to clients outside the allowed networks and 401 to
// those without the token, when one is set. A profile (pprof) is for
// loopback clients, or for allowed ones that present the token.
func (a *Admin) guard(h http.Handler, profile bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !contains(a.opts.Allow, ip.Addr().Unmap()) {
			http.Error(w, "forbidden: this address may not use the admin API (see --admin-allow)", http.StatusForbidden)
			return
		}
		loopback := ip.Addr().Unmap().IsLoopback()
		switch {
		case a.opts.Token != "" && !a.tokenOK(r):
			// Basic too, so that a browser asks for the token (as the
			// password) and can show the status page.
			w.Header().Add("WWW-Authenticate", `Bearer realm="swarmgate admin"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="swarmgate admin", charset="UTF-8"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <token> (see --admin-token-file)", http.StatusUnauthorized)
			return
		case profile && !loopback && a.opts.Token == "":
			http.Error(w, "forbidden: profiles are served to loopback clients, or to others with --admin-token-file", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// tokenOK compares the token in constant time: a bearer token, or the
// password of Basic authentication (any user name), which is how a browser
// sends it.
func (a *Admin) tokenOK(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, ok = r.BasicAuth()
	}
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.opts.Token)) == 1
}

func contains(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
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

// SourceView is one route source in /api/sources. Status is absent for a
// source that does not report one (a routes file).
type SourceView struct {
	Name   string              `json:"name"`
	Status *route.SourceStatus `json:"status,omitempty"`
	// Updated is when the source last delivered a Config; Changed is when
	// its backend reported the change that Config brings (zero if it does
	// not say), and LagSeconds the time from that change to the table in
	// force.
	Updated    time.Time `json:"updated,omitzero"`
	Changed    time.Time `json:"changed,omitzero"`
	LagSeconds float64   `json:"lag_seconds,omitempty"`
}

func (a *Admin) sourceViews() []SourceView {
	out := make([]SourceView, 0, len(a.sources))
	a.mu.Lock()
	seen := slices.Clone(a.seen)
	a.mu.Unlock()
	for i, s := range a.sources {
		v := SourceView{Name: s.Name()}
		if i < len(seen) {
			v.Updated, v.Changed = seen[i].updated, seen[i].changed
			if !v.Changed.IsZero() && seen[i].applied.After(v.Changed) {
				v.LagSeconds = seen[i].applied.Sub(v.Changed).Seconds()
			}
		}
		if r, ok := s.(route.Reporter); ok {
			st := r.Status()
			v.Status = &st
		}
		out = append(out, v)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
