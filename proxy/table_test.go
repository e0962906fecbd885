package proxy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/route"
)

// tableView is what a table serves, independent of how it was built: its
// targets oldest first, what every probe is routed to, and its refusals.
func tableView(t *Table, probes [][2]string) []string {
	var out []string
	for _, tg := range t.targets {
		var eps []string
		for _, e := range tg.endpoints {
			eps = append(eps, e.Addr)
		}
		out = append(out, fmt.Sprintf("target %s w=%d %v %v", tg.id, tg.route.Weight, eps, tg.keys))
	}
	for _, p := range probes {
		g, m, ok := t.http.Lookup(p[0], p[1])
		if !ok {
			out = append(out, fmt.Sprintf("%s%s: 404", p[0], p[1]))
			continue
		}
		var ids []string
		for _, tg := range g.targets {
			ids = append(ids, tg.id)
		}
		var shared []string
		for _, tg := range g.shared {
			shared = append(shared, tg.id)
		}
		out = append(out, fmt.Sprintf("%s%s: %v %v shared %v", p[0], p[1], m, ids, shared))
	}
	return append(out, fmt.Sprintf("errors %q", t.errors))
}

// TestDerivedTableIsAFullBuild changes a Config at random, one step after
// another, and checks that every table derived from the one in force serves
// exactly what a table built from nothing serves for the same Config.
func TestDerivedTableIsAFullBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	p := New(Options{Logger: zap.NewNop()})
	defer p.Close()
	var cfg route.Config
	for step := range 400 {
		routes, _ := randomChange(rng, cfg.Routes, step)
		cfg = route.Config{Routes: routes}
		p.Update(cfg)
		checkFullBuild(t, step, p.Table(), cfg)
	}
}

// TestHintedTableIsAFullBuild is TestDerivedTableIsAFullBuild with Configs
// that say which routes changed (route.Config.Delta), as the control
// client's do, and some whose hint is stale or leaves out a route that came
// or went: every table must serve what a full build serves, honest hints
// must be taken, and lying ones refused.
func TestHintedTableIsAFullBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	p := New(Options{Logger: zap.NewNop()})
	defer p.Close()
	var cfg route.Config
	taken := 0
	for step := range 600 {
		routes, changed := randomChange(rng, cfg.Routes, step)
		next := route.Config{Routes: routes, Gen: rng.Uint64() | 1, Delta: &route.Delta{From: cfg.Gen, Routes: changed}}
		lie := ""
		switch rng.IntN(8) {
		case 0:
			lie, next.Delta.From = "stale", rng.Uint64()|1
		case 1: // a route that came, left out
			nr := randomRoute(rng, 100+step)
			nr.Hosts = []string{"a.example.org"}
			next.Routes = append(next.Routes, nr)
			lie = "a new route not named"
		case 2: // a route that went, left out
			if i := slices.IndexFunc(next.Routes, func(r route.Route) bool { return r.IsHTTP() && !slices.Contains(changed, r.ID()) }); i >= 0 {
				next.Routes = slices.Delete(slices.Clone(next.Routes), i, i+1)
				lie = "a route gone not named"
			}
		case 3: // naming a route that did not change is allowed
			if len(next.Routes) > 0 {
				next.Delta.Routes = append(slices.Clone(changed), next.Routes[rng.IntN(len(next.Routes))].ID())
			}
		}
		if step == 0 {
			next.Delta = nil
		}
		prev := p.Table()
		p.Update(next)
		tb := p.Table()
		checkFullBuild(t, step, tb, next)
		if lie != "" && tb.hinted {
			t.Fatalf("step %d: a hint with %s was taken", step, lie)
		}
		if tb.hinted {
			taken++
		} else if lie == "" && next.Delta != nil && prev.failed == 0 {
			t.Fatalf("step %d: an honest hint was refused", step)
		}
		cfg = next
	}
	if taken < 150 {
		t.Errorf("%d hints taken in 600 steps", taken)
	}
}

// TestHintAfterBuildWithoutInstall checks that a hint is only taken from the
// table in force: a Config derived from a table that was built and never
// installed is compared in full, and one derived from the table in force
// still uses its hint.
func TestHintAfterBuildWithoutInstall(t *testing.T) {
	r := func(svc, ep string) route.Route {
		return route.Route{Service: svc, Hosts: []string{svc + ".org"}, Path: "/", Port: 80,
			Weight: 1, Balancer: route.DefaultBalancer, Endpoints: []string{ep}}
	}
	p := New(Options{Logger: zap.NewNop()})
	defer p.Close()
	a := route.Config{Routes: []route.Route{r("a", "10.0.0.1:80"), r("b", "10.0.0.2:80")}, Gen: 1}
	p.Update(a)
	b := route.Config{Routes: []route.Route{r("a", "10.0.0.3:80"), r("b", "10.0.0.2:80")}, Gen: 2,
		Delta: &route.Delta{From: 1, Routes: []string{"a"}}}
	p.Build(b) // never installed
	c := route.Config{Routes: []route.Route{r("a", "10.0.0.3:80"), r("b", "10.0.0.4:80")}, Gen: 3,
		Delta: &route.Delta{From: 2, Routes: []string{"b"}}}
	tc := p.Build(c)
	if tc.hinted {
		t.Fatal("a hint from a table that is not in force was taken")
	}
	checkFullBuild(t, 0, tc, c)
	d := route.Config{Routes: []route.Route{r("a", "10.0.0.1:80"), r("b", "10.0.0.4:80")}, Gen: 4,
		Delta: &route.Delta{From: 1, Routes: []string{"b"}}}
	td := p.Build(d)
	if !td.hinted {
		t.Fatal("a hint from the table in force was refused")
	}
	checkFullBuild(t, 1, td, d)
	p.Install(td)
	p.Install(tc) // out of order: reconciled with every target
	checkFullBuild(t, 2, p.Table(), c)
}

var (
	probeHosts = []string{"a.example.org", "b.example.org", "*.example.org", "c.example.org", "bad_host.org"}
	probePaths = []string{"/", "/api", "/api/v1", "/static"}
)

// checkFullBuild fails t unless tb serves what a table built from nothing
// for cfg serves.
func checkFullBuild(t *testing.T, step int, tb *Table, cfg route.Config) {
	t.Helper()
	var probes [][2]string
	for _, h := range []string{"a.example.org", "b.example.org", "x.example.org", "c.example.org", "other.net"} {
		for _, p := range []string{"/", "/api/x", "/api/v1/y", "/static/z"} {
			probes = append(probes, [2]string{h, p})
		}
	}
	fresh := New(Options{Logger: zap.NewNop()})
	defer fresh.Close()
	fresh.Update(route.Config{Routes: cfg.Routes, Errors: cfg.Errors})
	got, want := tableView(tb, probes), tableView(fresh.Table(), probes)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("step %d: the derived table differs from a full build:\n%s", step, diffLines(got, want))
	}
}

// randomRoute returns a route of service "svc<i>" with random labels.
func randomRoute(rng *rand.Rand, i int) route.Route {
	r := route.Route{
		Service: fmt.Sprintf("svc%d", i), CreatedAt: time.Unix(int64(rng.IntN(5)), 0),
		Hosts: []string{probeHosts[rng.IntN(len(probeHosts))]}, Path: probePaths[rng.IntN(len(probePaths))],
		Priority: rng.IntN(2), Weight: []int{0, 1, 100}[rng.IntN(3)], Default: rng.IntN(8) == 0,
		Port: 80, Balancer: route.DefaultBalancer, Timeout: time.Second,
	}
	if rng.IntN(3) == 0 {
		r.Name = "r" + fmt.Sprint(rng.IntN(2))
	}
	if rng.IntN(6) == 0 {
		r.Hosts = append(r.Hosts, probeHosts[rng.IntN(len(probeHosts))])
	}
	if rng.IntN(10) == 0 {
		r.Balancer = "no-such-balancer"
	}
	if rng.IntN(5) == 0 {
		r.Policy = &route.Policy{MatchHeader: route.Match{Name: "X-Canary", Value: "1"}}
	}
	for j := range rng.IntN(3) {
		r.Endpoints = append(r.Endpoints, fmt.Sprintf("10.0.%d.%d:80", i, j+rng.IntN(3)))
	}
	return r
}

// randomChange returns a copy of routes with one to three random changes
// (a service comes or goes, its tasks move, its labels change), shuffled,
// and the IDs of the routes that came, went or changed.
func randomChange(rng *rand.Rand, routes []route.Route, step int) ([]route.Route, []string) {
	routes = slices.Clone(routes)
	var changed []string
	for range 1 + rng.IntN(3) {
		switch op := rng.IntN(4); {
		case op == 0 || len(routes) == 0: // a new service (route IDs are unique in a Config)
			nr := randomRoute(rng, rng.IntN(30))
			if !slices.ContainsFunc(routes, func(r route.Route) bool { return r.ID() == nr.ID() }) {
				routes = append(routes, nr)
				changed = append(changed, nr.ID())
			}
		case op == 1: // a service leaves
			i := rng.IntN(len(routes))
			changed = append(changed, routes[i].ID())
			routes = slices.Delete(routes, i, i+1)
		case op == 2: // its tasks move
			i := rng.IntN(len(routes))
			r := routes[i]
			r.Endpoints = append(slices.Clone(r.Endpoints), fmt.Sprintf("10.1.%d.%d:80", step%250, i))
			routes[i] = r
			changed = append(changed, r.ID())
		default: // its labels change
			i := rng.IntN(len(routes))
			r := randomRoute(rng, 0)
			r.Service, r.Name, r.CreatedAt = routes[i].Service, routes[i].Name, routes[i].CreatedAt
			routes[i] = r
			changed = append(changed, r.ID())
		}
	}
	rng.Shuffle(len(routes), func(i, j int) { routes[i], routes[j] = routes[j], routes[i] })
	return routes, changed
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "derived: %s\nbuilt:   %s\n", g, w)
		}
	}
	return b.String()
}

// TestDuplicateRouteIDs checks that two routes with one ID (two sources
// publishing a service of the same name) are both served, across changes.
func TestDuplicateRouteIDs(t *testing.T) {
	r := func(host string, eps ...string) route.Route {
		return route.Route{Service: "app", Hosts: []string{host}, Path: "/", Port: 80,
			Weight: 1, Balancer: route.DefaultBalancer, Endpoints: eps}
	}
	p := New(Options{Logger: zap.NewNop()})
	defer p.Close()
	for i, cfg := range [][]route.Route{
		{r("a.org", "10.0.0.1:80"), r("b.org", "10.0.0.2:80")},
		{r("a.org", "10.0.0.1:80"), r("b.org", "10.0.0.3:80")},
		{r("b.org", "10.0.0.3:80"), r("a.org", "10.0.0.1:80")},
		{r("a.org", "10.0.0.4:80")},
	} {
		p.Update(route.Config{Routes: cfg})
		tb := p.Table()
		if len(tb.targets) != len(cfg) {
			t.Fatalf("step %d: %d targets, want %d", i, len(tb.targets), len(cfg))
		}
		for _, want := range cfg {
			g, _, ok := tb.http.Lookup(want.Hosts[0], "/")
			if !ok || len(g.targets) != 1 || g.targets[0].endpoints[0].Addr != want.Endpoints[0] {
				t.Errorf("step %d: %s is not routed to %s", i, want.Hosts[0], want.Endpoints[0])
			}
		}
	}
}

// TestUnchangedRoutesKeepTheirTargets checks what a change rebuilds: only
// the routes that changed; the others keep their targets (balancer state,
// policies), and a table that changes nothing keeps its router.
func TestUnchangedRoutesKeepTheirTargets(t *testing.T) {
	r := func(svc string, eps ...string) route.Route {
		return route.Route{Service: svc, Hosts: []string{svc + ".example.org"}, Path: "/", Port: 80,
			Weight: 1, Balancer: route.DefaultBalancer, Endpoints: eps}
	}
	p := New(Options{Logger: zap.NewNop()})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{r("a", "10.0.0.1:80"), r("b", "10.0.0.2:80")}})
	first := p.Table()
	p.Update(route.Config{Routes: []route.Route{r("b", "10.0.0.2:80"), r("a", "10.0.0.1:80", "10.0.0.3:80")}})
	second := p.Table()
	if second.targetOf("b") != first.targetOf("b") {
		t.Error("an unchanged route was rebuilt")
	}
	if second.targetOf("a") == first.targetOf("a") {
		t.Error("a changed route kept its old target")
	}
	if len(second.fresh) != 1 || len(second.dropped) != 1 || second.fresh[0].id != "a" || second.dropped[0].id != "a" {
		t.Errorf("fresh %v dropped %v, want route a in both", second.fresh, second.dropped)
	}
	p.Update(route.Config{Routes: []route.Route{r("a", "10.0.0.1:80", "10.0.0.3:80"), r("b", "10.0.0.2:80")}})
	if third := p.Table(); third.http != second.http || len(third.fresh)+len(third.dropped) != 0 {
		t.Error("a Config that changes nothing rebuilt the router")
	}
	if got := p.Table().Describe(time.Now()); len(got) != 2 || len(got[0].Endpoints) != 2 {
		t.Errorf("listing after the changes: %+v", got)
	}
}

// TestHealthChecksFollowTheirRoutes checks that an active health check runs
// on while its route is unchanged, whatever else changes, and stops with
// its route, leaving its endpoints healthy rather than stuck down.
func TestHealthChecksFollowTheirRoutes(t *testing.T) {
	checked := route.Route{Service: "a", Hosts: []string{"a.example.org"}, Path: "/", Port: 80, Weight: 1,
		Balancer: route.DefaultBalancer, HealthPath: "/healthz", HealthInterval: time.Hour, Timeout: time.Second,
		Endpoints: []string{"127.0.0.1:9"}}
	other := func(eps ...string) route.Route {
		return route.Route{Service: "b", Hosts: []string{"b.example.org"}, Path: "/", Port: 80, Weight: 1,
			Balancer: route.DefaultBalancer, Endpoints: eps}
	}
	p := New(Options{Logger: zap.NewNop()})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{checked, other("10.0.0.1:80")}})
	tg := p.Table().targetOf("a")
	p.mu.Lock()
	_, running := p.checks[tg]
	p.mu.Unlock()
	if !running {
		t.Fatal("no health check for the route that asks for one")
	}
	tg.endpoints[0].SetHealthy(false)
	p.Update(route.Config{Routes: []route.Route{checked, other("10.0.0.2:80")}})
	p.mu.Lock()
	_, running = p.checks[tg]
	n := len(p.checks)
	p.mu.Unlock()
	if p.Table().targetOf("a") != tg || !running || n != 1 {
		t.Errorf("an unrelated change restarted the health check (kept %v, running %v, checks %d)", p.Table().targetOf("a") == tg, running, n)
	}
	p.Update(route.Config{Routes: []route.Route{other("10.0.0.2:80")}})
	p.mu.Lock()
	n, covered := len(p.checks), len(p.checked)
	p.mu.Unlock()
	if n != 0 || covered != 0 {
		t.Errorf("%d checks and %d checked endpoints left after their route went", n, covered)
	}
	if !tg.endpoints[0].Available(time.Now()) {
		t.Error("an endpoint no check covers any more is still down")
	}
}
