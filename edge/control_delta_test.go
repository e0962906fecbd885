package edge

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// TestControlDeltasBuildAsFullBuilds streams random changes from a control
// plane to an edge through a control.Client, whose Configs say in their
// Delta which routes changed, and checks after each that the edge's HTTP
// table lists what a table built from nothing for the same Config lists,
// and that its endpoint counts are those of counting every route.
func TestControlDeltasBuildAsFullBuilds(t *testing.T) {
	log := zaptest.NewLogger(t)
	srv := control.NewServer(control.ServerOptions{Logger: log, Registerer: prometheus.NewRegistry()})
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer(nil)
	go hs.Serve(ln)
	defer hs.Close()
	c, err := control.NewClient(control.ClientOptions{Addrs: []string{"tcp://" + ln.Addr().String()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// As in Run: the client patches the routes of the Config before last
	// in place rather than copy the last one's.
	c.RecycleRoutes()
	te := startEdge(t, route.Config{}, time.Hour)
	var mu sync.Mutex
	hinted := 0 // Configs that came with a Delta
	// applied is a copy of the last Config applied, made on the client's
	// goroutine: its routes may be rewritten two Configs later.
	var applied route.Config
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(cfg route.Config) {
			te.e.Apply(Merge(route.DefaultCluster, cfg))
			mu.Lock()
			if cfg.Delta != nil {
				hinted++
			}
			applied = cfg
			applied.Routes = slices.Clone(cfg.Routes)
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-done }()

	rng := rand.New(rand.NewPCG(4, 6))
	newRoute := func(i int) route.Route {
		r := route.Route{Service: fmt.Sprintf("svc%02d", i), Hosts: []string{fmt.Sprintf("h%d.example.org", rng.IntN(6))},
			Path: []string{"/", "/api"}[rng.IntN(2)], Port: 80, Weight: 1 + rng.IntN(2), Balancer: route.DefaultBalancer,
			Timeout: time.Second, CreatedAt: time.Unix(int64(rng.IntN(4)), 0).UTC()}
		for range 1 + rng.IntN(3) {
			r.Endpoints = append(r.Endpoints, fmt.Sprintf("10.0.%d.%d:80", i, rng.IntN(5)))
		}
		slices.Sort(r.Endpoints)
		r.Endpoints = slices.Compact(r.Endpoints)
		return r
	}
	byService := map[string]route.Route{}
	now := time.Unix(1000, 0)
	for step := range 80 {
		for range 1 + rng.IntN(2) {
			i := rng.IntN(30)
			svc := fmt.Sprintf("svc%02d", i)
			switch old, ok := byService[svc]; {
			case !ok:
				byService[svc] = newRoute(i)
			case rng.IntN(3) == 0:
				delete(byService, svc)
			default: // its tasks move, or its labels change
				r := newRoute(i)
				if rng.IntN(2) == 0 { // the same labels, other tasks
					eps := r.Endpoints
					r = old
					r.Endpoints = eps
				}
				r.CreatedAt = old.CreatedAt
				byService[svc] = r
			}
		}
		var routes []route.Route
		for _, k := range slices.Sorted(maps.Keys(byService)) {
			routes = append(routes, byService[k])
		}
		srv.Update(route.Config{Routes: routes})
		want := srv.Version()
		for deadline := time.Now().Add(10 * time.Second); c.State().Version != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("step %d: the client is at version %q, the server at %q", step, c.State().Version, want)
			}
		}
		snap := te.e.Snapshot()
		mu.Lock()
		cfg := applied
		mu.Unlock()
		if cfg.Gen != snap.Config.Gen {
			t.Fatalf("step %d: the snapshot in force is of Config %d, the last applied %d", step, snap.Config.Gen, cfg.Gen)
		}
		if !reflect.DeepEqual(cfg.Routes, routes) && len(routes) > 0 {
			t.Fatalf("step %d: the client's Config has the routes\n%+v\nthe server was given\n%+v", step, cfg.Routes, routes)
		}
		fresh := proxy.New(proxy.Options{Logger: zap.NewNop()})
		got, full := snap.HTTP.Describe(now), fresh.Build(cfg).Describe(now)
		fresh.Close()
		if !reflect.DeepEqual(got, full) {
			t.Fatalf("step %d: the edge's table lists\n%+v\na full build lists\n%+v", step, got, full)
		}
		counts := map[string]int{}
		snap.countEndpoints(counts)
		te.e.mu.Lock()
		refs := maps.Clone(te.e.refs)
		te.e.mu.Unlock()
		if !maps.Equal(refs, counts) {
			t.Fatalf("step %d: endpoint counts %v, a full count gives %v", step, refs, counts)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hinted < 40 {
		t.Errorf("%d of 80 Configs came with a Delta", hinted)
	}
}
