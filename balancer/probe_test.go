package balancer

import (
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// everyPolicy returns one of each policy that chooses among available endpoints.
func everyPolicy() map[string]Policy {
	return map[string]Policy{"round-robin": &RoundRobin{}, "least-conn": LeastConn{}, "p2c": P2C{}, "ip-hash": IPHash{}}
}

func TestBackFromEjectionOneProbeAtATime(t *testing.T) {
	clk := testkit.NewClock()
	pool := NewPool(PoolOptions{Now: clk.Now})
	a, b := pool.Endpoint("10.0.0.1:80"), pool.Endpoint("10.0.0.2:80")
	eps := []*Endpoint{a, b}
	pickedOnly := func(step string, want *Endpoint) {
		t.Helper()
		for name, p := range everyPolicy() {
			for i := range 20 {
				h := Hint{ClientIP: "192.0.2." + string(rune('1'+i%9))}
				if got := p.Pick(eps, h, clk.Now()); got != want {
					t.Fatalf("%s: %s picked %v; want only %s", step, name, got, want.Addr)
				}
			}
		}
	}

	a.Acquire()(time.Millisecond, ConnectFailure)
	pickedOnly("ejected", b)
	clk.Advance(DefaultBaseEjection)
	if !a.Available(clk.Now()) {
		t.Fatal("still ejected after its ejection")
	}
	// The probe: while it is in flight, nobody else is sent there.
	probe := a.Acquire()
	pickedOnly("probe in flight", b)
	probe(time.Millisecond, ConnectFailure) // still gone: out again, twice as long
	pickedOnly("probe failed", b)
	clk.Advance(2*DefaultBaseEjection - 1)
	if a.Available(clk.Now()) {
		t.Fatal("available before its doubled ejection ended")
	}
	clk.Advance(1)
	probe = a.Acquire()
	if a.Available(clk.Now()) {
		t.Fatal("a second request may go to a probed endpoint before its probe answered")
	}
	probe(time.Millisecond, Success) // back: no longer one at a time
	first, second := a.Acquire(), a.Acquire()
	if !a.Available(clk.Now()) {
		t.Error("after a Success, an endpoint with requests in flight is still held to one probe")
	}
	first(time.Millisecond, Success)
	second(time.Millisecond, Success)
}

func TestProbingIsNotDown(t *testing.T) {
	// A lone endpoint being probed is still the fallback when everything
	// is unavailable: the proxy sends to LeastEjected rather than 503.
	clk := testkit.NewClock()
	a := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
	a.Acquire()(time.Millisecond, ConnectFailure)
	clk.Advance(DefaultBaseEjection)
	probe := a.Acquire()
	defer probe(time.Millisecond, Success)
	if got := LeastEjected([]*Endpoint{a}); got != a {
		t.Fatalf("LeastEjected = %v; want the probed endpoint", got)
	}
}

// TestConnectFailureLeavesEveryRoute: two routes name the same task; a
// connect failure seen through one takes it out of both at once.
func TestConnectFailureLeavesEveryRoute(t *testing.T) {
	clk := testkit.NewClock()
	pool := NewPool(PoolOptions{Now: clk.Now})
	web := []*Endpoint{pool.Endpoint("10.0.0.1:8000"), pool.Endpoint("10.0.0.2:8000")}
	api := []*Endpoint{pool.Endpoint("10.0.0.3:8000"), pool.Endpoint("10.0.0.1:8000")}
	gone := web[0]
	if api[1] != gone {
		t.Fatal("the pool gave two endpoints for one address")
	}
	gone.Acquire()(time.Millisecond, ConnectFailure)
	for name, p := range everyPolicy() {
		for range 20 {
			for _, eps := range [][]*Endpoint{web, api} {
				if got := p.Pick(eps, Hint{ClientIP: "192.0.2.1"}, clk.Now()); got == gone {
					t.Fatalf("%s picked the endpoint that failed to connect", name)
				}
			}
		}
	}
}
