package proxy

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/router"
)

// Table is one immutable routing snapshot. A request loads the current Table
// once and uses it to the end, so a swap never changes a request half-way.
type Table struct {
	http    *router.Table[*group]
	targets []*target // every HTTP target, for health checks and the admin API
	config  route.Config
	errors  []string // routes the table refused (conflicts the label parser cannot see)
	built   time.Time
}

// group is a weighted set of routes that publish the same host, path and
// priority: a canary or blue-green split.
type group struct {
	targets []*target // every member, oldest first
	// matched are the members with a matcher, oldest first: the first that
	// matches a request takes it. nil in a group without one, which then
	// costs a request nothing.
	matched []*target
	shared  []*target // the other members: targets itself when matched is nil
	// weighted picks among shared by weight.
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
	guard     http.Handler // the route's policies ahead of forward; nil is none
	match     *matcher     // the requests the route takes in its group; nil is any
	errorPage []byte       // swarmgate.errors.page; nil is the plain-text answers
}

// pick chooses the member whose matcher r matches, else a member by weight,
// falling back to any other weighted member that still has an available
// endpoint.
func (g *group) pick(r *http.Request, now time.Time) *target {
	for _, t := range g.matched {
		if t.match.matches(r) {
			return t
		}
	}
	if t, ok := g.weighted.Pick(); ok && t.available(now) {
		return t
	}
	for _, t := range g.shared {
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

// buildTable turns the HTTP routes of a Config into a Table. Endpoints come
// from pool, so their statistics and connections survive the rebuild. Routes
// the router rejects are left out and reported; they never affect other
// routes.
//
// guard wraps each route's handler in its policies and reads its error
// page, once per table; a route whose policy cannot be served (a missing
// htpasswd file) is reported and answers 503 rather than going unguarded,
// and one whose page cannot be read is reported and answers in plain text.
func buildTable(cfg route.Config, pool *balancer.Pool, tr transports, budgets func(route string) *retryBudget,
	guard func(*target) (http.Handler, error), now time.Time) *Table {
	t := &Table{config: cfg, built: now}
	type key struct {
		host, path string
		priority   int
	}
	groups := make(map[key]*group, len(cfg.Routes))
	order := make([]key, 0, len(cfg.Routes))
	// Older routes first, so that group members and listings are deterministic.
	routes := cfg.HTTPByAge()
	for _, r := range routes {
		tg, err := newTarget(r, pool, tr, budgets(r.ID()))
		if err != nil {
			t.errors = append(t.errors, err.Error())
			continue
		}
		if tg.guard, err = guard(tg); err != nil {
			t.errors = append(t.errors, fmt.Sprintf("route %s: %v", tg.id, err))
		}
		t.targets = append(t.targets, tg)
		hosts := r.Hosts
		if r.Default {
			hosts = append(slices.Clip(hosts), "")
		}
		for _, h := range hosts {
			k := key{routeHost(h), routePrefix(r.Path), r.Priority}
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
		g.shared = g.targets
		if slices.ContainsFunc(g.targets, func(tg *target) bool { return tg.match != nil }) {
			g.shared = nil
			for _, tg := range g.targets {
				if tg.match != nil {
					g.matched = append(g.matched, tg)
				} else {
					g.shared = append(g.shared, tg)
				}
			}
		}
		weights := make([]int, len(g.shared))
		for i, tg := range g.shared {
			weights[i] = tg.route.Weight
		}
		g.weighted = balancer.NewWeighted(g.shared, weights)
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
		match:     newMatcher(r.Policy),
	}
	if r.Strip && r.Path != "/" {
		tg.stripLen = len(routePrefix(r.Path))
	}
	for _, addr := range r.Endpoints {
		tg.endpoints = append(tg.endpoints, pool.Endpoint(addr))
	}
	return tg, nil
}

// routeHost is the router's form of a route host (router.ParseHost): lower
// case, without a trailing dot; "" (the default backend) stays "". A host the
// router refuses is only lower-cased, for Insert to reject and report.
func routeHost(h string) string {
	if c, _, err := router.ParseHost(h); err == nil {
		return c
	}
	return strings.ToLower(h)
}

// routePrefix is the router's form of a route's path prefix
// (router.ParsePath): without a trailing slash other than the root's; ""
// is the root. A prefix the router refuses is returned as it is, for Insert
// to reject and report.
func routePrefix(p string) string {
	if p == "" {
		return "/"
	}
	if c, err := router.ParsePath(p); err == nil {
		return c
	}
	return p
}

// Endpoints calls f with the address of every endpoint the table uses.
func (t *Table) Endpoints(f func(addr string)) {
	for _, tg := range t.targets {
		for _, e := range tg.endpoints {
			f(e.Addr)
		}
	}
}

// Rejected lists the routes the table refused, with the reason.
func (t *Table) Rejected() []string { return t.errors }

// Built is when the table was built.
func (t *Table) Built() time.Time { return t.built }
