package edge

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/l4"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// benchConfigs returns two Configs of n HTTP routes (five tasks each, as in
// bench/scale) that differ in one endpoint of one route: what one Swarm
// change sends an edge. With hinted, each says so in its Delta from the
// other, as the control client's Configs do.
func benchConfigs(n int, hinted bool) [2]route.Config {
	var cfgs [2]route.Config
	for i := range n {
		eps := make([]string, 5)
		for j := range eps {
			eps[j] = fmt.Sprintf("10.%d.%d.%d:8000", i/250, i%250, 1+j)
		}
		cfgs[0].Routes = append(cfgs[0].Routes, route.Route{
			Service: fmt.Sprintf("svc%05d", i), Hosts: []string{fmt.Sprintf("svc%05d.bench.test", i)},
			Path: "/", Port: 8000, Weight: route.DefaultWeight, Balancer: route.DefaultBalancer,
			Backend: route.BackendTask, TLS: route.TLSOff, BackendTLS: route.BackendTLSOff,
			Timeout: route.DefaultTimeout, CreatedAt: time.Unix(int64(i), 0), Endpoints: eps,
		})
	}
	cfgs[1].Routes = append([]route.Route(nil), cfgs[0].Routes...)
	r := &cfgs[1].Routes[n/2]
	r.Endpoints = append(append([]string(nil), r.Endpoints[:4]...), "10.250.0.1:8000")
	if hinted {
		cfgs[0].Gen, cfgs[1].Gen = 1, 2
		cfgs[0].Delta = &route.Delta{From: 2, Routes: []string{r.ID()}}
		cfgs[1].Delta = &route.Delta{From: 1, Routes: []string{r.ID()}}
	}
	return cfgs
}

// BenchmarkApply applies, alternately, two Configs of n routes that differ
// in one endpoint, each with the Delta that says so, as the control client
// sends them: the edge CPU one Swarm change costs (issue: <= 10 ms at
// 10,000 services).
func BenchmarkApply(b *testing.B) { benchApply(b, true) }

// BenchmarkApplyUnhinted is BenchmarkApply with Configs that do not say
// what changed (a --docker or --routes source, or several merged): every
// route is compared.
func BenchmarkApplyUnhinted(b *testing.B) { benchApply(b, false) }

// benchEdge is an Edge with its proxy, pool and L4 engine, closed when the
// benchmark ends.
func benchEdge(b *testing.B) *Edge {
	pool := balancer.NewPool(balancer.PoolOptions{})
	p := proxy.New(proxy.Options{Logger: zap.NewNop(), Pool: pool})
	engine := l4.New(l4.Options{Logger: zap.NewNop()})
	e := New(Core{Proxy: p, Pool: pool, L4: engine, BackendDrain: time.Hour})
	b.Cleanup(func() {
		e.Close()
		engine.Close()
		p.Close()
	})
	return e
}

func benchApply(b *testing.B, hinted bool) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cfgs := benchConfigs(n, hinted)
			e := benchEdge(b)
			e.Apply(cfgs[0])
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e.Apply(cfgs[(i+1)%2])
			}
		})
	}
}

// BenchmarkControlDelta is one change end to end through the control
// plane's stream, at n routes of five tasks: the control plane publishes a
// version in which one route's endpoint moved, its delta crosses a
// loopback HTTP/2 stream, the edge's control.Client applies it and the
// edge applies the Config. ns/op is the time from Update to the table in
// force; B/op and allocs/op, and cpu-ms/op (the process's CPU per change,
// garbage collection included), count both sides, the Server's Update
// (BenchmarkUpdate in control) included. recycle is the client as
// edge.Run sets it up (control.Client.RecycleRoutes); copy, a Config made
// by copying the last one's routes.
func BenchmarkControlDelta(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, recycle := range []bool{false, true} {
			name := fmt.Sprintf("%d/copy", n)
			if recycle {
				name = fmt.Sprintf("%d/recycle", n)
			}
			b.Run(name, func(b *testing.B) { benchControlDelta(b, n, recycle) })
		}
	}
}

func benchControlDelta(b *testing.B, n int, recycle bool) {
	cfgs := benchConfigs(n, false)
	srv := control.NewServer(control.ServerOptions{})
	defer srv.Close()
	srv.Update(cfgs[0])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := srv.HTTPServer(nil)
	go hs.Serve(ln)
	defer hs.Close()
	c, err := control.NewClient(control.ClientOptions{Addrs: []string{"tcp://" + ln.Addr().String()}})
	if err != nil {
		b.Fatal(err)
	}
	if recycle {
		c.RecycleRoutes()
	}
	e := benchEdge(b)
	applied := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(cfg route.Config) {
			e.Apply(Merge(route.DefaultCluster, cfg))
			applied <- struct{}{}
		})
	}()
	defer func() { cancel(); <-done }()
	wait := func() {
		select {
		case <-applied:
		case <-time.After(30 * time.Second):
			b.Fatal("no table within 30 s")
		}
	}
	wait() // the snapshot
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	runtime.GC()
	b.ReportAllocs()
	start, i := cpu(), 0
	for b.Loop() {
		i++
		srv.Update(cfgs[i%2])
		wait()
	}
	b.ReportMetric(float64(cpu()-start)/float64(time.Millisecond)/float64(i), "cpu-ms/op")
}
