package edge

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// TestEndpointsLeaveThePoolWithTheirLastRoute follows an endpoint shared by
// HTTP and L4 routes: it stays in the pool (its state kept) while any route
// uses it, and leaves with the last.
func TestEndpointsLeaveThePoolWithTheirLastRoute(t *testing.T) {
	httpRoute := func(svc string, eps ...string) route.Route {
		return route.Route{Service: svc, Hosts: []string{svc + ".example.org"}, Path: "/", Port: 80,
			Weight: 1, Balancer: route.DefaultBalancer, Endpoints: eps}
	}
	tcp := route.Route{Service: "db", TCPPort: freePort(t), Port: 5432, Balancer: route.DefaultBalancer,
		Endpoints: []string{"10.0.0.9:5432", "10.0.0.1:80"}}
	te := startEdge(t, route.Config{Routes: []route.Route{
		httpRoute("a", "10.0.0.1:80", "10.0.0.2:80"), httpRoute("b", "10.0.0.2:80"), tcp}}, time.Hour)
	pool := te.e.c.Pool
	steps := []struct {
		routes []route.Route
		want   []string
	}{
		{[]route.Route{httpRoute("a", "10.0.0.1:80", "10.0.0.2:80"), tcp}, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.9:5432"}},
		{[]route.Route{httpRoute("a", "10.0.0.1:80"), tcp}, []string{"10.0.0.1:80", "10.0.0.9:5432"}},
		{[]route.Route{httpRoute("a", "10.0.0.1:80")}, []string{"10.0.0.1:80"}},
		{nil, nil},
	}
	for i, s := range steps {
		te.e.Apply(route.Config{Routes: s.routes})
		te.e.mu.Lock()
		got := map[string]int{}
		maps.Copy(got, te.e.refs)
		te.e.mu.Unlock()
		if len(got) != len(s.want) || pool.Len() != len(s.want) {
			t.Errorf("step %d: references %v, pool of %d; want %v", i, got, pool.Len(), s.want)
		}
		for _, a := range s.want {
			if got[a] == 0 {
				t.Errorf("step %d: %s has no reference", i, a)
			}
		}
	}
}

// TestEndpointCountsMatchAFullCount applies random changes and checks, after
// each, that the counts kept change by change are those of counting every
// route, and that the pool holds exactly the counted endpoints.
func TestEndpointCountsMatchAFullCount(t *testing.T) { checkCountsAcrossChanges(t, false) }

// TestHintedEndpointCountsMatchAFullCount is TestEndpointCountsMatchAFullCount
// with Configs whose Delta names the route that changed, as the control
// client's do: the proxy compares only that route, and the counts must
// still be those of counting every route.
func TestHintedEndpointCountsMatchAFullCount(t *testing.T) { checkCountsAcrossChanges(t, true) }

func checkCountsAcrossChanges(t *testing.T, hinted bool) {
	rng := rand.New(rand.NewPCG(3, 5))
	te := startEdge(t, route.Config{}, time.Hour)
	ports := []int{freePort(t), freePort(t)}
	var routes []route.Route
	var gen uint64
	for step := range 200 {
		var changed string
		switch op := rng.IntN(3); {
		case op == 0 || len(routes) == 0:
			r := route.Route{Service: fmt.Sprintf("s%d", step), Port: 80, Weight: 1, Balancer: route.DefaultBalancer,
				Hosts: []string{fmt.Sprintf("h%d.example.org", rng.IntN(5))}, Path: "/", CreatedAt: time.Unix(int64(step), 0)}
			if rng.IntN(4) == 0 {
				r.TCPPort, r.Hosts = ports[rng.IntN(2)], nil
			}
			for range rng.IntN(4) {
				r.Endpoints = append(r.Endpoints, fmt.Sprintf("10.0.0.%d:80", rng.IntN(8)))
			}
			routes = append(routes, r)
			changed = r.ID()
		case op == 1:
			i := rng.IntN(len(routes))
			changed = routes[i].ID()
			routes = append(routes[:i:i], routes[i+1:]...)
		default:
			i := rng.IntN(len(routes))
			r := routes[i]
			r.Endpoints = append([]string{fmt.Sprintf("10.0.0.%d:80", rng.IntN(8))}, r.Endpoints[min(1, len(r.Endpoints)):]...)
			routes = append(append(routes[:i:i], r), routes[i+1:]...)
			changed = r.ID()
		}
		cfg := route.Config{Routes: routes}
		if hinted {
			cfg.Gen = gen + 1
			if step > 0 {
				cfg.Delta = &route.Delta{From: gen, Routes: []string{changed}}
			}
			gen = cfg.Gen
		}
		te.e.Apply(cfg)
		want := map[string]int{}
		te.e.Snapshot().countEndpoints(want)
		te.e.mu.Lock()
		got := maps.Clone(te.e.refs)
		te.e.mu.Unlock()
		if !maps.Equal(got, want) || te.e.c.Pool.Len() != len(want) {
			t.Fatalf("step %d: counts %v, pool of %d; a full count gives %v", step, got, te.e.c.Pool.Len(), want)
		}
	}
}

// freePort returns a TCP port that was free a moment ago, for an L4 route.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
