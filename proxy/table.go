package proxy

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/l4"
	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/router"
)

// Table is one immutable routing snapshot. A request loads the current Table
// once and uses it to the end, so a swap never changes a request half-way.
type Table struct {
	http     *router.Table[*group]
	targets  []*target // every HTTP target, for health checks and the admin API
	l4       *l4.Table
	l4routes []l4entry // for the admin API
	config   route.Config
	errors   []string // routes the table refused (conflicts the label parser cannot see)
	built    time.Time

	// certs maps a host pattern (exact or "*.suffix") to the certificate
	// name its routes ask for (swarmgate.tls=NAME); acme holds the exact
	// hosts whose routes ask for swarmgate.tls=auto.
	certs map[string]string
	acme  map[string]bool
}

// group is a weighted set of routes that publish the same host, path and
// priority: a canary or blue-green split.
type group struct {
	targets  []*target
	weighted *balancer.Weighted[*target]
}

// target is one route of one service with its resolved endpoints.
type target struct {
	route     *route.Route
	id        string // route ID, the "route" metric and log label
	policy    balancer.Policy
	endpoints []*balancer.Endpoint
	transport http.RoundTripper
	sticky    string // cookie name; "" is off
	stripLen  int    // bytes of the path prefix to strip; 0 for none
	budget    *retryBudget
}

// pick chooses a target by weight, falling back to any other weighted target
// that still has an available endpoint.
func (g *group) pick(now time.Time) *target {
	if t, ok := g.weighted.Pick(); ok && t.available(now) {
		return t
	}
	for _, t := range g.targets {
		if t.route.Weight > 0 && t.available(now) {
			return t
		}
	}
	// Every endpoint is ejected: take the weighted pick anyway, and let
	// pickEndpoint try its least ejected endpoint (see balancer.LeastEjected).
	if t, ok := g.weighted.Pick(); ok && len(t.endpoints) > 0 {
		return t
	}
	return nil
}

func (t *target) available(now time.Time) bool {
	for _, e := range t.endpoints {
		if e.Available(now) {
			return true
		}
	}
	return false
}

// transports chooses the upstream transport for a route.
type transports interface {
	forRoute(r *route.Route) http.RoundTripper
}

// buildTable turns a desired Config into a Table. Endpoints come from pool,
// so their statistics and connections survive the rebuild. Routes the router
// rejects are left out and reported; they never affect other routes.
func buildTable(cfg route.Config, pool *balancer.Pool, tr transports, budgets func(route string) *retryBudget, now time.Time) *Table {
	t := &Table{config: cfg, built: now, certs: map[string]string{}, acme: map[string]bool{}}
	buildL4(t, cfg, pool)
	type key struct {
		host, path string
		priority   int
	}
	groups := make(map[key]*group)
	var order []key
	routes := make([]*route.Route, 0, len(cfg.Routes))
	for i := range cfg.Routes {
		if cfg.Routes[i].IsHTTP() {
			routes = append(routes, &cfg.Routes[i])
		}
	}
	// Older routes first, so that group members and listings are deterministic.
	slices.SortStableFunc(routes, func(a, b *route.Route) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID(), b.ID()))
	})
	for _, r := range routes {
		tg, err := newTarget(r, pool, tr, budgets(r.ID()))
		if err != nil {
			t.errors = append(t.errors, err.Error())
			continue
		}
		t.targets = append(t.targets, tg)
		for _, h := range r.Hosts {
			h = strings.ToLower(h)
			switch r.TLS {
			case "", route.TLSOff, route.TLSPassthrough:
			case route.TLSAuto:
				if !strings.HasPrefix(h, "*.") {
					t.acme[h] = true
				}
			default:
				if _, ok := t.certs[h]; !ok { // the older route's certificate wins
					t.certs[h] = r.TLS
				}
			}
		}
		hosts := r.Hosts
		if r.Default {
			hosts = append(slices.Clip(hosts), "")
		}
		for _, h := range hosts {
			k := key{strings.ToLower(h), normalizePrefix(r.Path), r.Priority}
			g := groups[k]
			if g == nil {
				g = &group{}
				groups[k] = g
				order = append(order, k)
			}
			g.targets = append(g.targets, tg)
		}
	}
	b := router.NewBuilder[*group]()
	for _, k := range order {
		g := groups[k]
		weights := make([]int, len(g.targets))
		for i, tg := range g.targets {
			weights[i] = tg.route.Weight
		}
		g.weighted = balancer.NewWeighted(g.targets, weights)
		if err := b.Insert(k.host, k.path, k.priority, g); err != nil {
			t.errors = append(t.errors, fmt.Sprintf("host %q path %q: %v", k.host, k.path, err))
		}
	}
	t.http = b.Build()
	return t
}

func newTarget(r *route.Route, pool *balancer.Pool, tr transports, budget *retryBudget) (*target, error) {
	policy, err := balancer.New(r.Balancer)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", r.ID(), err)
	}
	tg := &target{
		route:     r,
		id:        r.ID(),
		policy:    policy,
		transport: tr.forRoute(r),
		sticky:    r.Sticky,
		budget:    budget,
	}
	if r.Strip && r.Path != "/" {
		tg.stripLen = len(normalizePrefix(r.Path))
	}
	for _, addr := range r.Endpoints {
		tg.endpoints = append(tg.endpoints, pool.Endpoint(addr))
	}
	return tg, nil
}

// normalizePrefix drops a trailing slash other than the root's, as the router does.
func normalizePrefix(p string) string {
	if p == "" {
		return "/"
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return strings.TrimRight(p, "/")
	}
	return p
}

// endpointsInUse reports every address the table references.
func (t *Table) endpointsInUse() map[string]bool {
	in := make(map[string]bool)
	for _, tg := range t.targets {
		for _, e := range tg.endpoints {
			in[e.Addr] = true
		}
	}
	for _, lr := range t.l4routes {
		for _, e := range lr.route.Endpoints {
			in[e.Addr] = true
		}
	}
	return in
}

// buildL4 adds the table's Layer 4 routes: TCP ports and SNI passthrough
// names. Two routes that claim the same port or name conflict: the older one
// keeps it and the newer one is rejected, deterministically.
func buildL4(t *Table, cfg route.Config, pool *balancer.Pool) {
	t.l4 = &l4.Table{TCP: map[int]*l4.Route{}, SNI: map[string]*l4.Route{}}
	routes := make([]*route.Route, 0)
	for i := range cfg.Routes {
		if r := &cfg.Routes[i]; r.TCPPort > 0 || len(r.SNI) > 0 {
			routes = append(routes, r)
		}
	}
	slices.SortStableFunc(routes, func(a, b *route.Route) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID(), b.ID()))
	})
	owner := map[string]string{}
	for _, r := range routes {
		policy, err := balancer.New(r.Balancer)
		if err != nil {
			t.errors = append(t.errors, fmt.Sprintf("route %s: %v", r.ID(), err))
			continue
		}
		lr := &l4.Route{ID: r.ID(), Service: r.Service, Policy: policy, ProxyProtocol: r.ProxyProtocol}
		for _, addr := range r.Endpoints {
			lr.Endpoints = append(lr.Endpoints, pool.Endpoint(addr))
		}
		entry := l4entry{route: lr}
		claimed := false
		if r.TCPPort > 0 {
			key := fmt.Sprintf("tcp port %d", r.TCPPort)
			if o, taken := owner[key]; taken {
				t.errors = append(t.errors, fmt.Sprintf("route %s: %s is already routed to %s", r.ID(), key, o))
			} else {
				owner[key] = r.ID()
				t.l4.TCP[r.TCPPort] = lr
				entry.port = r.TCPPort
				claimed = true
			}
		}
		for _, name := range r.SNI {
			name = strings.ToLower(name)
			key := "tls server name " + name
			if o, taken := owner[key]; taken {
				t.errors = append(t.errors, fmt.Sprintf("route %s: %s is already routed to %s", r.ID(), key, o))
				continue
			}
			owner[key] = r.ID()
			t.l4.SNI[name] = lr
			entry.sni = append(entry.sni, name)
			claimed = true
		}
		if claimed {
			t.l4routes = append(t.l4routes, entry)
		}
	}
}

// l4entry is an L4 route and what it claimed, for the admin API.
type l4entry struct {
	route *l4.Route
	port  int
	sni   []string
}

// CertFor returns the certificate name the routes of host ask for: the
// tlsstore's route-certificate hook.
func (t *Table) CertFor(host string) (string, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if name, ok := t.certs[host]; ok {
		return name, true
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if name, ok := t.certs["*"+host[i:]]; ok {
				return name, true
			}
		}
	}
	return "", false
}

// tlsKey names the TLS settings a host is served under.
func (t *Table) tlsKey(host string) string {
	if name, ok := t.CertFor(host); ok {
		return "cert:" + name
	}
	if t.ACMEHost(host) {
		return "acme:" + strings.ToLower(host)
	}
	return ""
}

// ACMEHost reports whether a route publishes host with swarmgate.tls=auto:
// the ACME host policy. Nothing else may be issued.
func (t *Table) ACMEHost(host string) bool {
	return t.acme[strings.ToLower(strings.TrimSuffix(host, "."))]
}
