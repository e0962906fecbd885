package balancer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

var policyNames = []string{"round-robin", "least-conn", "p2c", "ip-hash", "cookie"}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		want string // %T of the policy; "" means an error
	}{
		{"round-robin", "*balancer.RoundRobin"},
		{"least-conn", "*balancer.LeastConn"},
		{"p2c", "*balancer.P2C"},
		{"cookie", "*balancer.P2C"},
		{"ip-hash", "*balancer.IPHash"},
		{"", "*balancer.P2C"},
		{"random", ""},
		{"Round-Robin", ""},
	}
	for _, tt := range tests {
		p, err := New(tt.name)
		if tt.want == "" {
			if !errors.Is(err, ErrUnknownPolicy) {
				t.Errorf("New(%q) error = %v, want ErrUnknownPolicy", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.name, err)
			continue
		}
		if got := fmt.Sprintf("%T", p); got != tt.want {
			t.Errorf("New(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
	a, _ := New("round-robin")
	b, _ := New("round-robin")
	if a == b {
		t.Error("New returned shared state for two routes")
	}
}

// TestDistribution runs 30,000 picks over 3 equal endpoints, each request
// finishing before the next with the same latency, and wants every endpoint
// within 5% of a third.
func TestDistribution(t *testing.T) {
	const picks, n = 30000, 3
	for _, name := range policyNames {
		t.Run(name, func(t *testing.T) {
			clk := testkit.NewClock()
			eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), n)
			pol, _ := New(name)
			count := map[*Endpoint]int{}
			for i := range picks {
				// ip-hash spreads clients, not requests: one pick per client.
				h := Hint{ClientIP: fmt.Sprintf("192.168.%d.%d", i/256, i%256)}
				e := pol.Pick(eps, h, clk.Now())
				if e == nil {
					t.Fatal("Pick returned nil with every endpoint available")
				}
				count[e]++
				e.Acquire()(time.Millisecond, Success)
			}
			checkShares(t, eps, count, picks, []float64{1. / 3, 1. / 3, 1. / 3}, 0.05)
		})
	}
}

// checkShares wants each endpoint's count within tol (relative) of its share.
func checkShares(t *testing.T, eps []*Endpoint, count map[*Endpoint]int, total int, shares []float64, tol float64) {
	t.Helper()
	for i, e := range eps {
		want := shares[i] * float64(total)
		if got := float64(count[e]); got < want*(1-tol) || got > want*(1+tol) {
			t.Errorf("%s got %v picks, want %.0f ±%.0f%%", e.Addr, got, want, tol*100)
		}
	}
}

func TestRoundRobinOrder(t *testing.T) {
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 3)
	rr := new(RoundRobin)
	var got []string
	for range 6 {
		got = append(got, rr.Pick(eps, Hint{}, clk.Now()).Addr)
	}
	want := []string{addr(0), addr(1), addr(2), addr(0), addr(1), addr(2)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	// With the middle one down, the other two alternate evenly.
	eps[1].SetHealthy(false)
	count := map[*Endpoint]int{}
	for range 1000 {
		count[rr.Pick(eps, Hint{}, clk.Now())]++
	}
	if count[eps[0]] != 500 || count[eps[2]] != 500 {
		t.Fatalf("with one down: %d / %d, want 500 / 500", count[eps[0]], count[eps[2]])
	}
}

func TestLeastConnAvoidsLoaded(t *testing.T) {
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 3)
	for range 5 {
		defer eps[0].Acquire()(time.Millisecond, Success)
	}
	r1 := eps[1].Acquire() // one in flight on eps[1], released below
	pol := LeastConn{}
	for range 100 {
		if e := pol.Pick(eps, Hint{}, clk.Now()); e != eps[2] {
			t.Fatalf("picked %s, want the idle %s", e.Addr, eps[2].Addr)
		}
	}
	// Load stays balanced when every pick stays in flight.
	var rel []func(time.Duration, Outcome)
	for range 99 {
		rel = append(rel, pol.Pick(eps, Hint{}, clk.Now()).Acquire())
	}
	if a, b, c := eps[0].InFlight(), eps[1].InFlight(), eps[2].InFlight(); a != 35 || b != 35 || c != 35 {
		t.Fatalf("in flight %d/%d/%d, want 35 each", a, b, c)
	}
	for _, r := range rel {
		r(time.Millisecond, Success)
	}
	r1(time.Millisecond, Success)
}

func TestP2CAvoidsSlowAndLoaded(t *testing.T) {
	const picks = 3000
	tests := []struct {
		name  string
		setup func(slow *Endpoint, rest []*Endpoint)
	}{
		{"slow", func(slow *Endpoint, rest []*Endpoint) {
			slow.Acquire()(100*time.Millisecond, Success)
			for _, e := range rest {
				e.Acquire()(time.Millisecond, Success)
			}
		}},
		{"loaded", func(slow *Endpoint, rest []*Endpoint) {
			for _, e := range append(rest, slow) {
				e.Acquire()(time.Millisecond, Success)
			}
			for range 10 {
				slow.Acquire() // stays in flight
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock()
			eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 4)
			tt.setup(eps[0], eps[1:])
			count := map[*Endpoint]int{}
			for range picks {
				e := P2C{}.Pick(eps, Hint{}, clk.Now())
				count[e]++
				e.Acquire()(time.Millisecond, Success)
			}
			if count[eps[0]] != 0 {
				t.Errorf("the %s endpoint got %d of %d picks", tt.name, count[eps[0]], picks)
			}
			checkShares(t, eps[1:], count, picks, []float64{1. / 3, 1. / 3, 1. / 3}, 0.1)
		})
	}
}

func TestP2CMeasuresNewEndpoints(t *testing.T) {
	clk := testkit.NewClock()
	p := NewPool(PoolOptions{Now: clk.Now})
	eps := endpoints(p, 3)
	for _, e := range eps {
		e.Acquire()(time.Millisecond, Success)
	}
	fresh := p.Endpoint("10.0.0.99:80")
	eps = append(eps, fresh)
	// Cost-wise the fresh endpoint is unknown: with equal load it wins every
	// pair it is drawn into, until it has a sample.
	if e := (P2C{}).Pick([]*Endpoint{eps[0], fresh}, Hint{}, clk.Now()); e != fresh {
		t.Fatalf("picked %s over an unmeasured endpoint", e.Addr)
	}
	// But not at any load: more in flight than the other loses.
	r := fresh.Acquire()
	if e := (P2C{}).Pick([]*Endpoint{eps[0], fresh}, Hint{}, clk.Now()); e != eps[0] {
		t.Fatal("unmeasured endpoint with more in flight still won")
	}
	r(time.Millisecond, Success)

	// A slow endpoint gets no traffic while its sample is fresh, and one
	// probe once it is stale.
	slow := p.Endpoint("10.0.0.98:80")
	slow.Acquire()(time.Second, Success)
	pair := []*Endpoint{eps[0], slow}
	for range 100 {
		if e := (P2C{}).Pick(pair, Hint{}, clk.Now()); e != eps[0] {
			t.Fatal("slow endpoint picked while its sample is fresh")
		}
		eps[0].Acquire()(time.Millisecond, Success)
	}
	clk.Advance(staleAfter + time.Nanosecond)
	eps[0].Acquire()(time.Millisecond, Success)
	if e := (P2C{}).Pick(pair, Hint{}, clk.Now()); e != slow {
		t.Fatal("stale slow endpoint not probed")
	}
}

func TestIPHashStableAndMinimalRemap(t *testing.T) {
	const clients, n = 3000, 5
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), n)
	ip := func(i int) string { return fmt.Sprintf("172.16.%d.%d", i/256, i%256) }
	before := make([]*Endpoint, clients)
	for i := range clients {
		before[i] = (IPHash{}).Pick(eps, Hint{ClientIP: ip(i)}, clk.Now())
		for range 3 {
			if e := (IPHash{}).Pick(eps, Hint{ClientIP: ip(i)}, clk.Now()); e != before[i] {
				t.Fatalf("client %s moved from %s to %s with nothing changed", ip(i), before[i].Addr, e.Addr)
			}
		}
	}

	// Another edge (another pool, other slice order) maps clients the same way.
	other := endpoints(NewPool(PoolOptions{Now: clk.Now}), n)
	other[0], other[4] = other[4], other[0]
	for i := range clients {
		if e := (IPHash{}).Pick(other, Hint{ClientIP: ip(i)}, clk.Now()); e.Addr != before[i].Addr {
			t.Fatalf("client %s: %s on one edge, %s on another", ip(i), before[i].Addr, e.Addr)
		}
	}

	check := func(t *testing.T, gone *Endpoint, eps []*Endpoint) {
		moved := 0
		for i := range clients {
			e := (IPHash{}).Pick(eps, Hint{ClientIP: ip(i)}, clk.Now())
			switch {
			case before[i] == gone:
				if e == gone {
					t.Fatalf("client %s still on the removed endpoint", ip(i))
				}
				moved++
			case e != before[i]:
				t.Fatalf("client %s of a remaining endpoint moved from %s to %s", ip(i), before[i].Addr, e.Addr)
			}
		}
		// The removed endpoint held about a fifth of the clients.
		if moved < clients/n*8/10 || moved > clients/n*12/10 {
			t.Fatalf("%d clients moved, want about %d", moved, clients/n)
		}
	}
	t.Run("unavailable", func(t *testing.T) {
		eps[2].SetHealthy(false)
		check(t, eps[2], eps)
		eps[2].SetHealthy(true)
		for i := range clients {
			if e := (IPHash{}).Pick(eps, Hint{ClientIP: ip(i)}, clk.Now()); e != before[i] {
				t.Fatalf("client %s did not return to %s", ip(i), before[i].Addr)
			}
		}
	})
	t.Run("removed from the table", func(t *testing.T) {
		check(t, eps[3], []*Endpoint{eps[0], eps[1], eps[2], eps[4]})
	})
}

func TestEveryPolicySkipsUnavailable(t *testing.T) {
	clk := testkit.NewClock()
	p := NewPool(PoolOptions{Now: clk.Now})
	for _, name := range policyNames {
		t.Run(name, func(t *testing.T) {
			eps := endpoints(p, 4)
			defer func() {
				for _, e := range eps {
					e.SetHealthy(true)
				}
			}()
			pol, _ := New(name)
			eps[0].SetHealthy(false)
			eps[2].Acquire()(0, ConnectFailure) // ejected
			for i := range 200 {
				h := Hint{ClientIP: fmt.Sprintf("10.9.0.%d", i)}
				if e := pol.Pick(eps, h, clk.Now()); e != eps[1] && e != eps[3] {
					t.Fatalf("picked unavailable %v", e)
				}
			}
			eps[1].SetHealthy(false)
			eps[3].SetHealthy(false)
			if e := pol.Pick(eps, Hint{ClientIP: "10.9.0.1"}, clk.Now()); e != nil {
				t.Fatalf("all unavailable: picked %s, want nil", e.Addr)
			}
			if e := pol.Pick(nil, Hint{}, clk.Now()); e != nil {
				t.Fatalf("no endpoints: picked %s, want nil", e.Addr)
			}
			clk.Advance(DefaultMaxEjection) // ends the ejection for the next policy
		})
	}
}

// TestConcurrentUse runs pickers, requests and health flips at once; run it
// with -race. Every request is released, so nothing may stay in flight.
func TestConcurrentUse(t *testing.T) {
	p := NewPool(PoolOptions{BaseEjection: time.Millisecond, MaxEjection: 4 * time.Millisecond})
	eps := endpoints(p, 6)
	w := NewWeighted([]int{0, 1}, []int{3, 1})
	var wg sync.WaitGroup
	for g := range 8 {
		pol, _ := New(policyNames[g%len(policyNames)])
		wg.Go(func() {
			outcomes := []Outcome{Success, Success, Success, Success, Failure, ConnectFailure}
			for i := range 2000 {
				w.Pick()
				e := pol.Pick(eps, Hint{ClientIP: fmt.Sprint(i % 50)}, p.Now())
				if e == nil {
					continue // everything ejected for a moment
				}
				e.Acquire()(time.Duration(rand.IntN(1000))*time.Microsecond, outcomes[rand.IntN(len(outcomes))])
				_ = FindSticky(eps, StickyValue(e), p.Now())
			}
		})
	}
	wg.Go(func() {
		for i := range 2000 {
			eps[i%len(eps)].SetHealthy(i%3 != 0)
			p.Endpoint(addr(i % 10))
			if i%100 == 0 {
				p.Prune(func(a string) bool { return a < addr(6) })
			}
		}
	})
	wg.Wait()
	for _, e := range eps {
		if n := e.InFlight(); n != 0 {
			t.Errorf("%s: %d in flight after all releases", e.Addr, n)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 8)
	for _, e := range eps {
		e.Acquire()(time.Millisecond, Success)
	}
	h := Hint{ClientIP: "203.0.113.7"}
	for _, name := range policyNames {
		pol, _ := New(name)
		if n := testing.AllocsPerRun(100, func() { pol.Pick(eps, h, clk.Now()) }); n != 0 {
			t.Errorf("%s Pick: %v allocations", name, n)
		}
	}
	e := eps[0]
	if n := testing.AllocsPerRun(100, func() { e.Acquire()(time.Millisecond, Success) }); n != 0 {
		t.Errorf("Acquire/release: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { FindSticky(eps, StickyValue(eps[5]), clk.Now()) }); n != 0 {
		t.Errorf("StickyValue/FindSticky: %v allocations", n)
	}
	w := NewWeighted([]string{"a", "b", "c"}, []int{90, 10, 5})
	if n := testing.AllocsPerRun(100, func() { w.Pick() }); n != 0 {
		t.Errorf("Weighted.Pick: %v allocations", n)
	}
}

// sequential sends n requests through P2C, one at a time: each takes
// latency(e) of fake time, and the next starts 100µs after it ends. It
// returns how many requests each endpoint got.
func sequential(clk *testkit.Clock, eps []*Endpoint, n int, latency func(*Endpoint) time.Duration) map[*Endpoint]int {
	count := map[*Endpoint]int{}
	for range n {
		e := P2C{}.Pick(eps, Hint{}, clk.Now())
		count[e]++
		lat := latency(e)
		e.Acquire()(lat, Success)
		clk.Advance(lat + 100*time.Microsecond)
	}
	return count
}

// TestP2CColdStart is a scale from 1 to 3 tasks: the new tasks' first
// requests are slow (a new connection, a cold start), later ones as fast as
// the old task's. Each new task must be back in the rotation within 100 ms
// of its slow request and then get its share. (Before the estimate faded
// without samples, such a task got about 1 request of 300.)
func TestP2CColdStart(t *testing.T) {
	const fast = 400 * time.Microsecond
	for _, cold := range []time.Duration{2 * time.Millisecond, 20 * time.Millisecond, 200 * time.Millisecond} {
		t.Run(cold.String(), func(t *testing.T) {
			clk := testkit.NewClock()
			p := NewPool(PoolOptions{Now: clk.Now})
			old := p.Endpoint(addr(0))
			for range 100 {
				old.Acquire()(fast, Success)
				clk.Advance(fast)
			}
			eps := []*Endpoint{old, p.Endpoint(addr(1)), p.Endpoint(addr(2))}
			served := map[*Endpoint]int{}
			slowAt := map[*Endpoint]time.Time{}
			var back []time.Duration
			latency := func(e *Endpoint) time.Duration {
				served[e]++
				switch {
				case e == old:
				case served[e] == 1:
					slowAt[e] = clk.Now().Add(cold) // when it ends
					return cold
				case served[e] == 2:
					back = append(back, clk.Now().Sub(slowAt[e]))
				}
				return fast
			}
			for len(back) < 2 {
				sequential(clk, eps, 1, latency)
				if len(served) == 3 && served[old] > 1e5 {
					t.Fatalf("new tasks not back after 100,000 requests: served %v", served)
				}
			}
			for _, d := range back {
				// Requests are sequential: the other new task's slow
				// request may come in between.
				if d > 100*time.Millisecond+cold {
					t.Errorf("a new task was picked again %v after its slow (%v) first request ended; want within 100ms (plus the other's)", d, cold)
				}
			}
			const n = 1200
			count := sequential(clk, eps, n, latency)
			for i, e := range eps {
				if count[e] < n/4 {
					t.Errorf("task %d got %d of the next %d requests; want a third", i, count[e], n)
				}
			}
		})
	}
}

// TestP2CSlowEndpointStillAvoided: an endpoint that is really slow, new or
// long known, gets far less than its share however its estimate fades, and
// still an occasional probe.
func TestP2CSlowEndpointStillAvoided(t *testing.T) {
	for _, slowLat := range []time.Duration{5 * time.Millisecond, 100 * time.Millisecond} {
		for _, known := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/known=%v", slowLat, known), func(t *testing.T) {
				clk := testkit.NewClock()
				eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 4)
				slow := eps[3]
				if known {
					for range 2 * warmupSamples {
						slow.Acquire()(slowLat, Success)
					}
				}
				const n = 20000 // about 10 s of fake time
				count := sequential(clk, eps, n, func(e *Endpoint) time.Duration {
					if e == slow {
						return slowLat
					}
					return 400 * time.Microsecond
				})
				if count[slow] == 0 || count[slow] > n/100 {
					t.Errorf("slow endpoint got %d of %d requests; want a few probes, under 1%% (a 25th of its share)", count[slow], n)
				}
			})
		}
	}
}
