package discovery

import (
	"context"
	"net/http/httptest"
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
	c := swarmCache{parsed: map[string]parsedLabels{}}
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
		full(b)
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
