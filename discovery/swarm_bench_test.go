package discovery

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/swarmgate/swarmgate/bench/scale/fakedocker"
)

// BenchmarkSwarmListing measures what a full listing and a service event
// cost the source at the scale of bench/scale (10,000 services, 50,000
// tasks; some 118 MB of JSON), against its fake Docker Engine API, whose
// encoding is done once, outside the clock:
//
//	go test -run '^$' -bench SwarmListing -benchtime 5x ./discovery
func BenchmarkSwarmListing(b *testing.B) {
	fake := fakedocker.New(fakedocker.Options{Services: 10000, Tasks: 5})
	fake.Warm()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := NewSwarm(SwarmOptions{Host: "tcp://" + srv.Listener.Addr().String(), Network: "bench-net"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c := swarmCache{parsed: map[string]parsedLabels{}, built: newSwarmMemo()}
	full := func(b *testing.B) swarmState {
		st, _, err := s.list(ctx, true, listing{}, &c)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}

	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			st := full(b)
			if res := buildSwarmConfig(st, "bench-net"); len(res.Config.Routes) != 10000 {
				b.Fatalf("%d routes", len(res.Config.Routes))
			}
		}
	})

	b.Run("event", func(b *testing.B) {
		buildSwarmConfig(full(b), "bench-net") // the build after a full listing computes every service
		id := fake.ServiceID(4242)
		i := c.index[id]
		want := listing{names: map[string]string{id: c.services[i].Spec.Name}}
		b.ReportAllocs()
		for b.Loop() {
			st, whole, err := s.list(ctx, false, want, &c)
			if err != nil || whole {
				b.Fatalf("whole %v, err %v", whole, err)
			}
			if res := buildSwarmConfig(st, "bench-net"); len(res.Config.Routes) != 10000 {
				b.Fatalf("%d routes", len(res.Config.Routes))
			}
		}
	})
}

// BenchmarkSwarmBuild measures buildSwarmConfig alone for one changed
// service (a scale-up: a version and a task more) at the scale of
// bench/scale, with the build memo (what the source does) and without it
// (every service's endpoints computed again, labels still reused), and a
// poll that finds the service as it was (memo-poll):
//
//	go test -run '^$' -bench SwarmBuild -benchtime 20x ./discovery
func BenchmarkSwarmBuild(b *testing.B) {
	fake := fakedocker.New(fakedocker.Options{Services: 10000, Tasks: 5})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	s, err := NewSwarm(SwarmOptions{Host: "tcp://" + srv.Listener.Addr().String(), Network: "bench-net"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := swarmCache{parsed: map[string]parsedLabels{}}
	st, _, err := s.list(context.Background(), true, listing{}, &c)
	if err != nil {
		b.Fatal(err)
	}
	// scaleUp replaces the tasks of the n-th service with one more, and
	// moves its version, as a poll of it after `docker service scale` does.
	added := 0
	scaleUp := func(n int) {
		added++
		svc := &c.services[n%len(c.services)]
		ts := c.tasks[svc.ID]
		extra := ts[0]
		extra.ID += "-x"
		extra.NetworksAttachments = slices.Clone(extra.NetworksAttachments)
		for i := range extra.NetworksAttachments {
			extra.NetworksAttachments[i].Addresses = []string{fmt.Sprintf("10.%d.%d.%d/8", 100+added/62500%100, added/250%250, added%250)}
		}
		c.tasks[svc.ID] = append(slices.Clip(ts), extra)
		svc.Version.Index += 1000000
	}
	// poll lists the n-th service again and finds it as it was: a new
	// task slice, the same tasks.
	poll := func(n int) {
		id := c.services[n%len(c.services)].ID
		c.tasks[id] = slices.Clone(c.tasks[id])
	}
	for _, bc := range []struct {
		name    string
		memo    bool
		change  func(int)
		changed int
	}{
		{"memo", true, scaleUp, 1},
		{"nomemo", false, scaleUp, 0},
		{"memo-poll", true, poll, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := st
			if bc.memo {
				st.Built = newSwarmMemo()
			}
			buildSwarmConfig(st, "bench-net")
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				bc.change(n * 37)
				res := buildSwarmConfig(st, "bench-net")
				if len(res.Config.Routes) != 10000 || len(res.Changed) != bc.changed {
					b.Fatalf("%d routes, %d changed", len(res.Config.Routes), len(res.Changed))
				}
			}
		})
	}
}
