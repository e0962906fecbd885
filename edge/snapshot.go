package edge

import (
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
	Config route.Config // the merged configuration it was built from
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
}

// build turns a merged Config into a Snapshot; the HTTP and L4 tables come
// from their owners, so that endpoint state is shared through one pool.
func build(cfg route.Config, p *proxy.Proxy, pool *balancer.Pool, now time.Time) *Snapshot {
	s := &Snapshot{Config: cfg, Built: now, HTTP: p.Build(cfg), acme: map[string]bool{}}
	var l4rejected []string
	s.L4, s.l4entries, l4rejected = l4.Build(cfg, pool)
	s.rejected = append(slices.Clone(s.HTTP.Rejected()), l4rejected...)

	routes := cfg.HTTPByAge() // the older route's certificate wins a host both name
	certs := router.NewBuilder[string]()
	for _, r := range routes {
		for _, h := range r.Hosts {
			h = strings.ToLower(h)
			switch r.TLS {
			case "", route.TLSOff, route.TLSPassthrough:
			case route.TLSAuto:
				if !strings.HasPrefix(h, "*.") {
					s.acme[h] = true
				}
			default:
				// An error is a host an older route has claimed already (the
				// HTTP table reports invalid hosts).
				_ = certs.Insert(h, "/", 0, r.TLS)
			}
		}
	}
	s.certs = certs.Build()
	return s
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

// endpoints reports every address the snapshot references.
func (s *Snapshot) endpoints() map[string]bool {
	in := make(map[string]bool)
	s.HTTP.Endpoints(func(a string) { in[a] = true })
	for _, e := range s.l4entries {
		for _, ep := range e.Route.Endpoints {
			in[ep.Addr] = true
		}
	}
	return in
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
