package proxy

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"maps"
	"net/http"
	"slices"
	"sort"
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
// many routes it serves. When the Config says which routes changed since the
// one the base table was built from (route.Config.Delta), the others are not
// even compared; and the indexes a table keeps for the next one are shared
// with its base but for the shards a change touches.
type Table struct {
	http    *router.Table[*group]
	targets []*target // every HTTP target, oldest first
	config  route.Config
	errors  []string // routes the table refused (conflicts the label parser cannot see)
	built   time.Time

	// byID indexes targets by route ID for the next table to reuse (the
	// first, when two routes share an ID); groups are the weighted groups
	// by their router key. Both are shared with the tables before and
	// after but for the shards that changed: read-only.
	byID   shardedMap[string, *target]
	groups shardedMap[groupKey, *group]
	// gen numbers the tables a proxy builds, each a new number; base is the
	// gen of the table this one was derived from. fresh are the targets
	// built for this table, dropped the base's targets it does not have.
	gen, base      uint64
	fresh, dropped []*target
	// problems are the targets whose problem is reported, oldest first;
	// failed counts the routes of config whose target could not be built.
	problems []*target
	failed   int
	// insertErrors are the router's refusals, by group key, for the next
	// table to report without inserting again.
	insertErrors map[groupKey]string
	// hinted reports that the table was built from config's Delta, without
	// comparing the routes it does not name (for tests).
	hinted bool
}

// targetOf returns the target of route id (the first, when two routes
// share the ID), or nil.
func (t *Table) targetOf(id string) *target {
	tg, _ := t.byID.get(id)
	return tg
}

// hasRoute reports whether the table has a route of ID id.
func (t *Table) hasRoute(id string) bool { return t.targetOf(id) != nil }

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
	// seen is the gen of the last table built that kept the target by
	// comparing its route, dropped the gen of the last one that dropped
	// it; only the (serialised) table builder reads or writes them.
	seen, dropped uint64
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
	// gen is the gen of the last table built: every table gets a new one,
	// even two built from the same base.
	gen uint64
}

// emptyTable is a proxy's first table: no routes, every request a 404.
func emptyTable(now time.Time) *Table {
	return &Table{http: router.NewBuilder[*group]().Build(), built: now,
		byID:         newShardedMap[*target](func(id string) string { return id }),
		groups:       newShardedMap[*group](func(k groupKey) string { return k.host }),
		insertErrors: map[groupKey]string{}}
}

// build turns the HTTP routes of cfg into a Table derived from prev. Routes
// that cannot be served are left out and reported; they never affect other
// routes. A route whose policy cannot be served (a missing htpasswd file)
// is reported and answers 503 rather than going unguarded, and one whose
// error page cannot be read is reported and answers in plain text.
func (b *builder) build(prev *Table, cfg route.Config, now time.Time) *Table {
	b.gen++
	t := &Table{config: cfg, built: now, gen: b.gen, base: prev.gen}
	var errs []string
	add := func(r *route.Route) {
		id := r.ID()
		tg := prev.targetOf(id)
		if tg != nil && tg.seen != t.gen && route.Same(tg.route, r) {
			tg.seen = t.gen
			return
		}
		tg, err := b.target(r, id)
		if err != nil {
			errs = append(errs, err.Error())
			t.failed++
			return
		}
		t.fresh = append(t.fresh, tg)
	}
	if named, ids, ok := hinted(prev, cfg); ok {
		// Only the routes the Delta names can differ from prev's.
		t.hinted = true
		for _, i := range named {
			add(&cfg.Routes[i])
		}
		for _, id := range ids {
			if tg := prev.targetOf(id); tg != nil && tg.seen != t.gen {
				t.dropped = append(t.dropped, tg)
			}
		}
		slices.SortFunc(t.dropped, compareAge)
	} else {
		for i := range cfg.Routes {
			if r := &cfg.Routes[i]; r.IsHTTP() {
				add(r)
			}
		}
		for _, tg := range prev.targets {
			if tg.seen != t.gen {
				t.dropped = append(t.dropped, tg)
			}
		}
	}
	for _, tg := range t.dropped {
		tg.dropped = t.gen
	}
	// byID is prev's less what left, plus what came: the first route of an
	// ID that two routes share keeps the entry.
	byID := prev.byID.edit()
	for _, tg := range t.dropped {
		if old, _ := byID.m.get(tg.id); old == tg {
			byID.del(tg.id)
		}
	}
	for _, tg := range t.fresh {
		if _, taken := byID.m.get(tg.id); !taken {
			byID.set(tg.id, tg)
		}
	}
	t.byID = byID.m
	fresh := slices.Clone(t.fresh)
	slices.SortStableFunc(fresh, compareAge)
	t.targets = byAge(prev.targets, fresh, t.dropped)
	t.groups, t.http, t.insertErrors = b.regroup(prev, t)

	// Report in the order of a full build: routes by age, then the router.
	if t.hinted {
		t.problems = byAge(prev.problems, slices.DeleteFunc(fresh, func(tg *target) bool { return tg.problem == "" }), t.dropped)
	} else {
		for _, tg := range t.targets {
			if tg.problem != "" {
				t.problems = append(t.problems, tg)
			}
		}
	}
	for _, tg := range t.problems {
		errs = append(errs, tg.problem)
	}
	for _, k := range slices.SortedFunc(maps.Keys(t.insertErrors), compareKeys) {
		errs = append(errs, t.insertErrors[k])
	}
	t.errors = errs
	return t
}

// hinted returns, when cfg.Delta applies to prev, the indexes in cfg.Routes
// of the HTTP routes it names and the IDs it names. It applies when prev was
// built from the Config the Delta starts from, prev has one target per
// HTTP route and per route ID, and the routes it does not name add up: as
// many HTTP routes of cfg as targets of prev. A hint that is stale, or that
// left out a route added or removed, falls back to comparing every route.
func hinted(prev *Table, cfg route.Config) (named []int, ids []string, ok bool) {
	d := cfg.Delta
	if d == nil || d.From == 0 || d.From != prev.config.Gen || prev.failed > 0 || prev.byID.len() != len(prev.targets) {
		return nil, nil, false
	}
	// A route's service is its ID or the ID up to a "/": a route whose
	// service is none of these is not named, and needs no ID built.
	idSet := make(map[string]bool, len(d.Routes))
	var services []string
	for _, id := range d.Routes {
		idSet[id] = true
		for i := range len(id) {
			if id[i] == '/' {
				services = append(services, id[:i])
			}
		}
		services = append(services, id)
	}
	slices.Sort(services)
	services = slices.Compact(services)
	var svcSet map[string]bool
	if len(services) > 8 {
		svcSet = make(map[string]bool, len(services))
		for _, s := range services {
			svcSet[s] = true
		}
	}
	unnamed := 0
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if !r.IsHTTP() {
			continue
		}
		maybe := svcSet[r.Service]
		if svcSet == nil {
			maybe = slices.Contains(services, r.Service)
		}
		if maybe && idSet[r.ID()] {
			named = append(named, i)
		} else {
			unnamed++
		}
	}
	// prev has one target per ID: the named IDs it has are its only
	// targets that may go.
	kept := len(prev.targets)
	for id := range idSet {
		ids = append(ids, id)
		if prev.hasRoute(id) {
			kept--
		}
	}
	if unnamed != kept {
		return nil, nil, false
	}
	return named, ids, true
}

// byAge returns prev (oldest first) less those of dropped it has, merged
// with fresh (oldest first): oldest first. A fresh target goes after the targets of prev that
// are as old and have its ID, as in a full build's order, which lists the
// routes a table kept before those it built for the same key. It costs
// a binary search per target that came or went and a copy of prev.
func byAge(prev, fresh, dropped []*target) []*target {
	type cut struct {
		at int     // index in prev
		tg *target // fresh target to insert before prev[at]; nil: drop prev[at]
	}
	cuts := make([]cut, 0, len(fresh)+len(dropped))
	for _, tg := range dropped {
		i, _ := slices.BinarySearchFunc(prev, tg, compareAge)
		for i < len(prev) && prev[i] != tg && compareAge(prev[i], tg) == 0 {
			i++ // another target as old with the same ID
		}
		if i < len(prev) && prev[i] == tg {
			cuts = append(cuts, cut{i, nil})
		}
	}
	for _, tg := range fresh {
		i := sort.Search(len(prev), func(i int) bool { return compareAge(tg, prev[i]) < 0 })
		cuts = append(cuts, cut{i, tg})
	}
	// At one index, insertions come before the drop and keep fresh's order.
	slices.SortStableFunc(cuts, func(a, b cut) int {
		return cmp.Or(cmp.Compare(a.at, b.at), compareBool(a.tg == nil, b.tg == nil))
	})
	out := make([]*target, 0, len(prev)+2*len(fresh)-len(cuts))
	from := 0
	for _, c := range cuts {
		out = append(out, prev[from:c.at]...)
		from = c.at
		if c.tg == nil {
			from++
		} else {
			out = append(out, c.tg)
		}
	}
	return append(out, prev[from:]...)
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
func (b *builder) regroup(prev, t *Table) (shardedMap[groupKey, *group], *router.Table[*group], map[groupKey]string) {
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
	groups := prev.groups.edit()
	insertErrors := prev.insertErrors
	cloned := false // insertErrors is a clone of prev's
	refuse := func() {
		if !cloned {
			insertErrors, cloned = maps.Clone(prev.insertErrors), true
		}
	}
	ed := prev.http.Edit()
	for k := range changed {
		old, _ := prev.groups.get(k)
		if _, refused := insertErrors[k]; refused {
			refuse()
			delete(insertErrors, k)
		} else if old != nil {
			if k.exact {
				ed.RemoveExact(k.host, k.path, k.priority)
			} else {
				ed.Remove(k.host, k.path, k.priority)
			}
		}
		var members []*target
		if old != nil {
			for _, tg := range old.targets {
				if tg.dropped != t.gen {
					members = append(members, tg)
				}
			}
		}
		members = append(members, joining[k]...)
		if len(members) == 0 {
			groups.del(k)
			continue
		}
		slices.SortStableFunc(members, compareAge)
		g := newGroup(members)
		groups.set(k, g)
		insert := ed.Insert
		if k.exact {
			insert = ed.InsertExact
		}
		if err := insert(k.host, k.path, k.priority, g); err != nil {
			refuse()
			insertErrors[k] = fmt.Sprintf("host %q path %q: %v", k.host, k.path, err)
		}
	}
	return groups.m, ed.Build(), insertErrors
}

// shards is how many maps a shardedMap is split in: at 10,000 routes, a
// change clones a map of about 160 entries and an array of 64 pointers.
const shards = 64

// shardedMap is a map split in shards that a table shares with the tables
// derived from it: an edit clones only the shards it changes, so that one
// change costs a shard, not the whole index. A shardedMap is read-only;
// its zero value is not usable (newShardedMap).
type shardedMap[K comparable, V any] struct {
	seed   maphash.Seed
	key    func(K) string // the part of a key that chooses its shard
	shards *[shards]map[K]V
	n      int
}

func newShardedMap[V any, K comparable](key func(K) string) shardedMap[K, V] {
	return shardedMap[K, V]{seed: maphash.MakeSeed(), key: key, shards: new([shards]map[K]V)}
}

func (m shardedMap[K, V]) shard(k K) int {
	return int(maphash.String(m.seed, m.key(k)) % shards)
}

func (m shardedMap[K, V]) get(k K) (V, bool) {
	v, ok := m.shards[m.shard(k)][k]
	return v, ok
}

func (m shardedMap[K, V]) len() int { return m.n }

// edit returns an editor of a copy of m; m stays as it is.
func (m shardedMap[K, V]) edit() *shardedEdit[K, V] { return &shardedEdit[K, V]{m: m} }

// shardedEdit changes a copy of a shardedMap: the first change copies the
// array of shards, and the first change to a shard clones that shard.
type shardedEdit[K comparable, V any] struct {
	m      shardedMap[K, V]
	copied bool
	owned  [shards]bool
}

// own returns k's shard, cloned for the edit.
func (e *shardedEdit[K, V]) own(k K) map[K]V {
	if !e.copied {
		a := *e.m.shards
		e.m.shards, e.copied = &a, true
	}
	i := e.m.shard(k)
	if !e.owned[i] {
		e.m.shards[i], e.owned[i] = maps.Clone(e.m.shards[i]), true
		if e.m.shards[i] == nil {
			e.m.shards[i] = map[K]V{}
		}
	}
	return e.m.shards[i]
}

func (e *shardedEdit[K, V]) set(k K, v V) {
	sh := e.own(k)
	if _, ok := sh[k]; !ok {
		e.m.n++
	}
	sh[k] = v
}

func (e *shardedEdit[K, V]) del(k K) {
	if _, ok := e.m.get(k); !ok {
		return
	}
	delete(e.own(k), k)
	e.m.n--
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
