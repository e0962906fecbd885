package proxy

import (
	"cmp"
	"fmt"
	"maps"
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
//
// A Table is derived from the one in force when it is built: a route that is
// route.Same as before keeps its target (endpoints, balancer state, policies,
// health check), and only the weighted groups of the routes that changed are
// rebuilt, so that one change to one service costs the edge little however
// many routes it serves.
type Table struct {
	http    *router.Table[*group]
	targets []*target // every HTTP target, oldest first
	config  route.Config
	errors  []string // routes the table refused (conflicts the label parser cannot see)
	built   time.Time

	// byID indexes targets by route ID for the next table to reuse (the
	// first, when two routes share an ID); groups are the weighted groups
	// by their router key.
	byID   map[string]*target
	groups map[groupKey]*group
	// gen numbers the tables a proxy builds; base is the gen of the table
	// this one was derived from. fresh are the targets built for this
	// table, dropped the base's targets it does not have.
	gen, base      uint64
	fresh, dropped []*target
	// insertErrors are the router's refusals, by group key, for the next
	// table to report without inserting again.
	insertErrors map[groupKey]string
}

// groupKey is where the router serves a group.
type groupKey struct {
	host, path string
	exact      bool // path is an exact route's (router.InsertExact)
	priority   int
}

// group is a weighted set of routes that publish the same host, path (exact
// or prefix) and priority: a canary or blue-green split.
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
	route     *route.Route // the target's own copy: a Config may be dropped while the target lives on
	id        string       // route ID, the "route" metric and log label
	policy    balancer.Policy
	endpoints []*balancer.Endpoint
	transport http.RoundTripper
	sticky    string // cookie name; "" is off
	stripLen  int    // bytes of the path prefix to strip; 0 for none
	budget    *retryBudget
	guard     http.Handler // the route's policies ahead of forward; nil is none
	match     *matcher     // the requests the route takes in its group; nil is any
	errorPage []byte       // swarmgate.errors.page; nil is the plain-text answers

	keys []groupKey // the groups the target is a member of
	// problem is why the route's policies or error page are not served,
	// reported by every table that has the target; "" is none.
	problem string
	// seen is the gen of the last table built that kept the target; only
	// the (serialised) table builder reads or writes it.
	seen uint64
	// series are the route's metric children, looked up once, when the
	// target is built; nil for a builder without metrics.
	series *routeSeries
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

// builder builds tables. Endpoints come from pool, so their statistics and
// connections survive every rebuild; budgets keeps retry budgets across
// tables; guard wraps a target's handler in its policies and reads its
// error page. A builder is used by one goroutine at a time.
type builder struct {
	pool    *balancer.Pool
	tr      transports
	budgets func(route string) *retryBudget
	guard   func(*target) (http.Handler, error)
	series  func(*target) *routeSeries // the route's metric children; nil for none
}

// emptyTable is a proxy's first table: no routes, every request a 404.
func emptyTable(now time.Time) *Table {
	return &Table{http: router.NewBuilder[*group]().Build(), built: now,
		byID: map[string]*target{}, groups: map[groupKey]*group{}, insertErrors: map[groupKey]string{}}
}

// build turns the HTTP routes of cfg into a Table derived from prev. Routes
// that cannot be served are left out and reported; they never affect other
// routes. A route whose policy cannot be served (a missing htpasswd file)
// is reported and answers 503 rather than going unguarded, and one whose
// error page cannot be read is reported and answers in plain text.
func (b *builder) build(prev *Table, cfg route.Config, now time.Time) *Table {
	t := &Table{config: cfg, built: now, gen: prev.gen + 1, base: prev.gen}
	var errs []string
	n := 0
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if !r.IsHTTP() {
			continue
		}
		n++
		id := r.ID()
		tg := prev.byID[id]
		if tg != nil && tg.seen != t.gen && route.Same(tg.route, r) {
			tg.seen = t.gen
			continue
		}
		tg, err := b.target(r, id)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		t.fresh = append(t.fresh, tg)
	}
	for _, tg := range prev.targets {
		if tg.seen != t.gen {
			t.dropped = append(t.dropped, tg)
		}
	}
	// byID is prev's less what left, plus what came: the first route of an
	// ID that two routes share keeps the entry.
	t.byID = prev.byID
	if len(t.fresh) > 0 || len(t.dropped) > 0 {
		t.byID = maps.Clone(prev.byID)
		for _, tg := range t.dropped {
			if t.byID[tg.id] == tg {
				delete(t.byID, tg.id)
			}
		}
		for _, tg := range t.fresh {
			if _, taken := t.byID[tg.id]; !taken {
				t.byID[tg.id] = tg
			}
		}
	}
	t.targets = byAge(prev.targets, t.fresh, t.gen, n)
	t.groups, t.http, t.insertErrors = b.regroup(prev, t)

	// Report in the order of a full build: routes by age, then the router.
	for _, tg := range t.targets {
		if tg.problem != "" {
			errs = append(errs, tg.problem)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(t.insertErrors), compareKeys) {
		errs = append(errs, t.insertErrors[k])
	}
	t.errors = errs
	return t
}

// byAge returns the kept targets of prev (those seen in gen, already oldest
// first) merged with fresh, oldest first.
func byAge(prev, fresh []*target, gen uint64, n int) []*target {
	fresh = slices.Clone(fresh)
	slices.SortStableFunc(fresh, compareAge)
	out := make([]*target, 0, n)
	i := 0
	for _, tg := range prev {
		if tg.seen != gen {
			continue
		}
		for i < len(fresh) && compareAge(fresh[i], tg) < 0 {
			out = append(out, fresh[i])
			i++
		}
		out = append(out, tg)
	}
	return append(out, fresh[i:]...)
}

// compareAge orders targets oldest first, then by route ID: the order of
// route.Config.HTTPByAge.
func compareAge(a, b *target) int {
	return cmp.Or(a.route.CreatedAt.Compare(b.route.CreatedAt), cmp.Compare(a.id, b.id))
}

func compareKeys(a, b groupKey) int {
	return cmp.Or(cmp.Compare(a.host, b.host), cmp.Compare(a.path, b.path), compareBool(b.exact, a.exact), cmp.Compare(a.priority, b.priority))
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// regroup rebuilds the groups that t's fresh and dropped targets are
// members of, and the router if any group changed; the others are prev's.
func (b *builder) regroup(prev, t *Table) (map[groupKey]*group, *router.Table[*group], map[groupKey]string) {
	joining := map[groupKey][]*target{}
	changed := map[groupKey]bool{}
	for _, tg := range t.fresh {
		for _, k := range tg.keys {
			joining[k] = append(joining[k], tg)
			changed[k] = true
		}
	}
	for _, tg := range t.dropped {
		for _, k := range tg.keys {
			changed[k] = true
		}
	}
	if len(changed) == 0 {
		return prev.groups, prev.http, prev.insertErrors
	}
	groups := maps.Clone(prev.groups)
	insertErrors := maps.Clone(prev.insertErrors)
	ed := prev.http.Edit()
	for k := range changed {
		if _, refused := insertErrors[k]; refused {
			delete(insertErrors, k)
		} else if prev.groups[k] != nil {
			if k.exact {
				ed.RemoveExact(k.host, k.path, k.priority)
			} else {
				ed.Remove(k.host, k.path, k.priority)
			}
		}
		var members []*target
		if g := prev.groups[k]; g != nil {
			for _, tg := range g.targets {
				if tg.seen == t.gen {
					members = append(members, tg)
				}
			}
		}
		members = append(members, joining[k]...)
		if len(members) == 0 {
			delete(groups, k)
			continue
		}
		slices.SortStableFunc(members, compareAge)
		g := newGroup(members)
		groups[k] = g
		insert := ed.Insert
		if k.exact {
			insert = ed.InsertExact
		}
		if err := insert(k.host, k.path, k.priority, g); err != nil {
			insertErrors[k] = fmt.Sprintf("host %q path %q: %v", k.host, k.path, err)
		}
	}
	return groups, ed.Build(), insertErrors
}

// newGroup returns the group of members, oldest first.
func newGroup(members []*target) *group {
	g := &group{targets: members, shared: members}
	if slices.ContainsFunc(members, func(tg *target) bool { return tg.match != nil }) {
		g.shared = nil
		for _, tg := range members {
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
	return g
}

// target builds the target of r, on a copy of r.
func (b *builder) target(src *route.Route, id string) (*target, error) {
	r := new(route.Route)
	*r = *src
	policy, err := balancer.New(r.Balancer)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", id, err)
	}
	tg := &target{
		route:     r,
		id:        id,
		policy:    policy,
		transport: b.tr.forRoute(r),
		sticky:    r.Sticky,
		budget:    b.budgets(id),
		match:     newMatcher(r.Policy),
	}
	if r.Strip && r.Path != "/" {
		// An exact route strips its whole path: what is forwarded is "/".
		tg.stripLen = len(routePath(r))
	}
	tg.endpoints = make([]*balancer.Endpoint, 0, len(r.Endpoints))
	for _, addr := range r.Endpoints {
		tg.endpoints = append(tg.endpoints, b.pool.Endpoint(addr))
	}
	hosts := r.Hosts
	if r.Default {
		hosts = append(slices.Clip(hosts), "")
	}
	for _, h := range hosts {
		k := groupKey{routeHost(h), routePath(r), r.Exact, r.Priority}
		if !slices.Contains(tg.keys, k) {
			tg.keys = append(tg.keys, k)
		}
	}
	if tg.guard, err = b.guard(tg); err != nil {
		tg.problem = fmt.Sprintf("route %s: %v", id, err)
	}
	if b.series != nil {
		tg.series = b.series(tg)
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

// routePath is the router's form of a route's path: routePrefix for a
// prefix route, the path as written for an exact one
// (router.ParseExactPath).
func routePath(r *route.Route) string {
	if r.Exact {
		return r.Path
	}
	return routePrefix(r.Path)
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

// DiffEndpoints reports whether t was derived from base and, if it was,
// calls added with the endpoint addresses of every route t built anew and
// removed with those of every route of base that t dropped, once per route
// (an address that two routes use is reported twice). A route that changed
// is both dropped and built anew. An edge that counts references this way
// finds the endpoints that left without listing every route.
func (t *Table) DiffEndpoints(base *Table, added, removed func(addr string)) bool {
	if base == nil || t.base != base.gen || t.gen == 0 {
		return false
	}
	for _, tg := range t.fresh {
		for _, e := range tg.endpoints {
			added(e.Addr)
		}
	}
	for _, tg := range t.dropped {
		for _, e := range tg.endpoints {
			removed(e.Addr)
		}
	}
	return true
}
