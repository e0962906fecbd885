package control

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/bench/scale/fakedocker"
	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/route"
)

// BenchmarkUpdate publishes a version in which one route's endpoints moved,
// among n routes: the control plane's cost per change.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := NewServer(ServerOptions{History: 64})
			cfg := manyRoutes(n, 0)
			s.Update(cfg)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				cfg.Routes[i%n].Endpoints = []string{fmt.Sprintf("10.200.%d.%d:8080", i/250%250, i%250)}
				s.Update(cfg)
			}
		})
	}
}

// BenchmarkClientDelta applies a one-endpoint delta among n routes and
// builds the Config: the edge's cost per change, before its table rebuild.
// With recycle (Client.RecycleRoutes, as an edge's client runs), the
// Config's routes are those of the Config before last, patched.
func BenchmarkClientDelta(b *testing.B) {
	trim := func(f []byte) []byte { return bytes.TrimSuffix(f, []byte("\n")) }
	for _, bc := range []struct {
		n       int
		recycle bool
	}{{1000, false}, {10000, false}, {1000, true}, {10000, true}} {
		name := fmt.Sprint(bc.n)
		if bc.recycle {
			name += "/recycle"
		}
		n := bc.n
		b.Run(name, func(b *testing.B) {
			cfgA := manyRoutes(n, 0)
			cfgB := manyRoutes(n, 0)
			cfgB.Routes[0].Endpoints = []string{"10.201.0.1:8080"}
			s := NewServer(ServerOptions{})
			s.Update(cfgA)
			snap := trim(s.cur.Load().snapshotFrame())
			s.Update(cfgB)
			ab := trim(s.cur.Load().live)
			s.Update(cfgA)
			ba := trim(s.cur.Load().live)
			c, err := NewClient(ClientOptions{Addrs: []string{"tcp://control:7070"}})
			if err != nil {
				b.Fatal(err)
			}
			if bc.recycle {
				c.RecycleRoutes()
			}
			nop := func(route.Config) {}
			if _, err := c.apply(snap, nop); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				f := ab
				if i%2 == 1 {
					f = ba
				}
				if _, err := c.apply(f, nop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSnapshotSize logs what a snapshot of many routes weighs, plain and
// gzipped: the figure that decides whether compression is worth it.
func TestSnapshotSize(t *testing.T) {
	for _, n := range []int{1000, 10000} {
		s := NewServer(ServerOptions{})
		s.Update(manyRoutes(n, 0))
		snap := s.cur.Load().snapshotFrame()
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(snap)
		w.Close()
		t.Logf("%d routes: snapshot %d bytes (%d per route), gzipped %d (%.0f%%)", n, len(snap), len(snap)/n, z.Len(), 100*float64(z.Len())/float64(len(snap)))
	}
}

// BenchmarkSwarmChange measures one change end to end on the control
// plane at the scale of bench/scale (10,000 services, 50,000 tasks): a
// service scaled up in bench/scale's fake Docker Engine API (its update
// event), discovery.Swarm's filtered listing of that service and its build,
// and Server.Update publishing the version. ns/op is the time from the
// change to the version (the 1 ms debounce included); cpu-ms/op is the
// process's CPU per change, the fake's event and listings and the polls
// that follow a change (a service an event named is polled for a second)
// included:
//
//	go test -run '^$' -bench SwarmChange -benchtime 20x ./control
func BenchmarkSwarmChange(b *testing.B) {
	fake := fakedocker.New(fakedocker.Options{Services: 10000, Tasks: 5})
	fake.Warm()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sw, err := discovery.NewSwarm(discovery.SwarmOptions{Host: "tcp://" + srv.Listener.Addr().String(),
		Network: "bench-net", Debounce: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer sw.Close()
	s := NewServer(ServerOptions{})
	versions := make(chan string, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sw.Run(ctx, func(cfg route.Config) {
			s.Update(cfg)
			versions <- s.Version()
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	next := func(b *testing.B, not string) {
		timeout := time.After(60 * time.Second)
		for {
			select {
			case v := <-versions:
				if v != not {
					return
				}
			case <-timeout:
				b.Fatal("no new version within 60 s")
			}
		}
	}
	next(b, "")
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportAllocs()
	var start time.Duration
	i := 0
	for b.Loop() {
		if i == 0 {
			start = cpu()
		}
		i++
		before := s.Version()
		if _, err := fake.ScaleUp(fake.ServiceID(i * 37 % 10000)); err != nil {
			b.Fatal(err)
		}
		next(b, before)
	}
	b.ReportMetric(float64(cpu()-start)/float64(time.Millisecond)/float64(i), "cpu-ms/op")
}
