package edge

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/l4"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/router"
)

// Snapshot is one immutable state of the edge, built from one merged Config:
// each consumer gets its part (the proxy its HTTP table, the L4 engine its
// table, the certificate store the certificate and ACME host sets, the admin
// API the listing), and a swap replaces them all at once.
type Snapshot struct {
	// Config is the merged configuration the snapshot was built from. Its
	// Routes may be rewritten by their source (routeRecycler) once two
	// later snapshots have been built: read them only while building the
	// snapshot after this one, as build does.
	Config route.Config
	Built  time.Time

	HTTP      *proxy.Table
	L4        *l4.Table
	l4entries []l4.Entry

	// certs maps a host pattern (exact or "*.suffix") to the certificate
	// name its routes ask for (swarmgate.tls=NAME): a router table, so that
	// the router's host matching is the only one. acme holds the exact hosts
	// whose routes ask for swarmgate.tls=auto.
	certs *router.Table[string]
	acme  map[string]bool

	rejected []string // routes the tables refused, with the reason

	// l4routes and tlsRoutes are the routes of Config the L4 table and the
	// certificate sets are made of, for the next snapshot to compare;
	// l4kept reports that L4 is the previous snapshot's.
	l4routes, tlsRoutes []*route.Route
	l4rejected          []string
	l4kept              bool
}

// build turns a merged Config into a Snapshot derived from prev, the one in
// force: the HTTP and L4 tables come from their owners, so that endpoint
// state is shared through one pool, and the L4 table and the certificate
// and ACME host sets are prev's when the routes they are made of are the
// same, as they are when a change only moves tasks.
func build(cfg route.Config, p *proxy.Proxy, pool *balancer.Pool, prev *Snapshot, now time.Time) *Snapshot {
	s := &Snapshot{Config: cfg, Built: now, HTTP: p.Build(cfg)}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if r.TCPPort > 0 || len(r.SNI) > 0 {
			s.l4routes = append(s.l4routes, r)
		}
		if r.IsHTTP() && r.TLS != "" && r.TLS != route.TLSOff && r.TLS != route.TLSPassthrough {
			s.tlsRoutes = append(s.tlsRoutes, r)
		}
	}

	if prev != nil && slices.EqualFunc(prev.l4routes, s.l4routes, route.Same) {
		s.L4, s.l4entries, s.l4rejected, s.l4kept = prev.L4, prev.l4entries, prev.l4rejected, true
	} else {
		s.L4, s.l4entries, s.l4rejected = l4.Build(cfg, pool)
	}
	s.rejected = append(slices.Clone(s.HTTP.Rejected()), s.l4rejected...)

	if prev != nil && slices.EqualFunc(prev.tlsRoutes, s.tlsRoutes, sameTLS) {
		s.certs, s.acme = prev.certs, prev.acme
		return s
	}
	// The older route's certificate wins a host both name.
	routes := slices.Clone(s.tlsRoutes)
	slices.SortStableFunc(routes, func(a, b *route.Route) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID(), b.ID()))
	})
	certs := router.NewBuilder[string]()
	s.acme = map[string]bool{}
	for _, r := range routes {
		for _, h := range r.Hosts {
			h = strings.ToLower(h)
			if r.TLS == route.TLSAuto {
				if !strings.HasPrefix(h, "*.") {
					s.acme[h] = true
				}
				continue
			}
			// An error is a host an older route has claimed already (the
			// HTTP table reports invalid hosts).
			_ = certs.Insert(h, "/", 0, r.TLS)
		}
	}
	s.certs = certs.Build()
	return s
}

// sameTLS reports whether two routes ask for the same certificates for the
// same hosts, with the same age.
func sameTLS(a, b *route.Route) bool {
	return a.TLS == b.TLS && slices.Equal(a.Hosts, b.Hosts) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.Service == b.Service && a.Name == b.Name
}

// CertFor returns the certificate name the routes of host ask for: the
// certificate store's route-certificate hook.
func (s *Snapshot) CertFor(host string) (string, bool) {
	if host == "" {
		return "", false
	}
	name, _, ok := s.certs.Lookup(host, "/")
	return name, ok
}

// ACMEHost reports whether a route publishes host with swarmgate.tls=auto:
// the ACME host policy. Nothing else may be issued.
func (s *Snapshot) ACMEHost(host string) bool {
	return s.acme[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// tlsName names the TLS settings a host is served under: the proxy's
// misdirected-request (421) hook.
func (s *Snapshot) tlsName(host string) string {
	if name, ok := s.CertFor(host); ok {
		return "cert:" + name
	}
	if s.ACMEHost(host) {
		return "acme:" + strings.ToLower(host)
	}
	return ""
}

// allIn reports whether every route is of cluster.
func allIn(cluster string, routes []route.Route) bool {
	for i := range routes {
		if routes[i].Cluster != cluster {
			return false
		}
	}
	return true
}

// countEndpoints adds one to refs for every route of the snapshot that uses
// an endpoint: the reference counts Edge.Apply keeps up to date.
func (s *Snapshot) countEndpoints(refs map[string]int) {
	s.HTTP.Endpoints(func(a string) { refs[a]++ })
	s.countL4(func(a string) { refs[a]++ })
}

// countL4 calls f with the endpoints of every L4 route the snapshot serves.
func (s *Snapshot) countL4(f func(addr string)) {
	for _, e := range s.l4entries {
		for _, ep := range e.Route.Endpoints {
			f(ep.Addr)
		}
	}
}

// Merge combines the Configs of several sources into the one an edge serves:
// the routes of cluster (route.DefaultCluster for edges started without
// --cluster) and every label error. Its Changed is the latest of theirs:
// the change that made this merge.
func Merge(cluster string, cfgs ...route.Config) route.Config {
	if len(cfgs) == 1 && allIn(cluster, cfgs[0].Routes) {
		// The usual edge: one source, one cluster. Configs are read-only,
		// so the source's is the merge.
		out := cfgs[0]
		if out.Routes == nil {
			out.Routes = []route.Route{}
		}
		return out
	}
	out := route.Config{Routes: []route.Route{}}
	for _, c := range cfgs {
		for _, r := range c.Routes {
			if r.Cluster == cluster {
				out.Routes = append(out.Routes, r)
			}
		}
		out.Errors = append(out.Errors, c.Errors...)
		if c.Changed.After(out.Changed) {
			out.Changed = c.Changed
		}
	}
	return out
}
