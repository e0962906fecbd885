package balancer

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestEjectionBackoff(t *testing.T) {
	tests := []struct {
		name string
		opts PoolOptions
		want []time.Duration // successive ejection lengths
	}{
		{"defaults", PoolOptions{}, []time.Duration{
			time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"custom", PoolOptions{BaseEjection: 100 * time.Millisecond, MaxEjection: 250 * time.Millisecond},
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}},
		{"max below base", PoolOptions{BaseEjection: 5 * time.Second, MaxEjection: time.Second},
			[]time.Duration{5 * time.Second, 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock()
			tt.opts.Now = clk.Now
			e := NewPool(tt.opts).Endpoint("10.0.0.1:80")
			for i, d := range tt.want {
				if !e.Available(clk.Now()) {
					t.Fatalf("ejection %d: unavailable before the failure", i)
				}
				e.Acquire()(time.Millisecond, ConnectFailure)
				if e.Available(clk.Now().Add(d - 1)) {
					t.Fatalf("ejection %d: available 1ns before %v", i, d)
				}
				if !e.Available(clk.Now().Add(d)) {
					t.Fatalf("ejection %d: still ejected after %v", i, d)
				}
				clk.Advance(d)
			}
		})
	}
}

func TestEjectionAfterConsecutiveFailures(t *testing.T) {
	clk := testkit.NewClock()
	e := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
	steps := []struct {
		o         Outcome
		available bool
	}{
		{Failure, true},
		{Failure, true},
		{Success, true}, // resets the count
		{Failure, true},
		{Failure, true},
		{Failure, false}, // third in a row
	}
	for i, s := range steps {
		e.Acquire()(time.Millisecond, s.o)
		if got := e.Available(clk.Now()); got != s.available {
			t.Fatalf("step %d (%v): Available = %v, want %v", i, s.o, got, s.available)
		}
	}
	clk.Advance(DefaultBaseEjection)
	if !e.Available(clk.Now()) {
		t.Fatal("not back after the base ejection")
	}
	// The count restarted at the ejection: two more failures are not enough.
	e.Acquire()(time.Millisecond, Failure)
	e.Acquire()(time.Millisecond, Failure)
	if !e.Available(clk.Now()) {
		t.Fatal("ejected again after two failures")
	}

	p := NewPool(PoolOptions{Now: clk.Now, MaxFailures: 1})
	e1 := p.Endpoint("10.0.0.2:80")
	e1.Acquire()(time.Millisecond, Failure)
	if e1.Available(clk.Now()) {
		t.Fatal("MaxFailures 1: available after one failure")
	}
}

func TestSuccessResetsBackoff(t *testing.T) {
	clk := testkit.NewClock()
	e := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
	e.Acquire()(0, ConnectFailure) // 1s
	clk.Advance(time.Second)
	e.Acquire()(0, ConnectFailure) // 2s
	clk.Advance(2 * time.Second)
	e.Acquire()(time.Millisecond, Success)
	e.Acquire()(0, ConnectFailure)
	if e.Available(clk.Now().Add(time.Second - 1)) {
		t.Fatal("ejected for less than the base after the reset")
	}
	if !e.Available(clk.Now().Add(time.Second)) {
		t.Fatal("backoff did not restart at the base after a success")
	}
}

func TestFailuresWhileEjectedDoNotDouble(t *testing.T) {
	clk := testkit.NewClock()
	e := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
	// Ten requests in flight all fail to connect.
	var rel []func(time.Duration, Outcome)
	for range 10 {
		rel = append(rel, e.Acquire())
	}
	for _, r := range rel {
		r(0, ConnectFailure)
	}
	if !e.Available(clk.Now().Add(time.Second)) {
		t.Fatal("in-flight failures extended the ejection")
	}
	clk.Advance(time.Second)
	e.Acquire()(0, ConnectFailure)
	if !e.Available(clk.Now().Add(2 * time.Second)) {
		t.Fatal("second ejection is longer than twice the base")
	}
	if e.InFlight() != 0 {
		t.Fatalf("InFlight = %d after all releases", e.InFlight())
	}
}

func TestActiveHealth(t *testing.T) {
	clk := testkit.NewClock()
	e := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
	e.SetHealthy(false)
	if e.Available(clk.Now()) {
		t.Fatal("available while marked down")
	}
	e.SetHealthy(true)
	if !e.Available(clk.Now()) {
		t.Fatal("unavailable after marked up")
	}
	// Both mechanisms must agree: up by the check, still ejected.
	e.Acquire()(0, ConnectFailure)
	if e.Available(clk.Now()) {
		t.Fatal("healthy check overrode a passive ejection")
	}
}

// sample is one finished request: its latency and outcome.
type sample struct {
	lat time.Duration
	o   Outcome
}

func TestLatencyEWMA(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []sample
		want    time.Duration
	}{
		{"no sample", nil, 0},
		{"first sample", []sample{{10 * ms, Success}}, 10 * ms},
		{"slower moves half", []sample{{10 * ms, Success}, {40 * ms, Success}}, 25 * ms},
		{"faster moves a quarter", []sample{{40 * ms, Success}, {20 * ms, Success}}, 35 * ms},
		{"failure raises", []sample{{10 * ms, Success}, {50 * ms, Failure}}, 30 * ms},
		{"failure never lowers", []sample{{10 * ms, Success}, {1 * ms, Failure}}, 10 * ms},
		{"connect failure is no sample", []sample{{10 * ms, Success}, {1 * ms, ConnectFailure}}, 10 * ms},
		{"zero latency is a sample", []sample{{0, Success}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock()
			e := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
			for _, s := range tt.samples {
				e.Acquire()(s.lat, s.o)
			}
			if got := e.Latency(); got != tt.want {
				t.Fatalf("Latency = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLatencyDecay: without samples the estimate p2c compares halves every
// half-life, which grows with the samples the endpoint has given; the next
// sample meets the faded estimate; an old sample counts for nothing.
func TestLatencyDecay(t *testing.T) {
	ms := time.Millisecond
	first := decayHalfLife / warmupSamples
	tests := []struct {
		name    string
		samples int // of 40 ms each, at one instant
		after   time.Duration
		want    time.Duration
	}{
		{"no time passed", 1, 0, 40 * ms},
		{"one sample, one early half-life", 1, first, 20 * ms},
		{"one sample, three early half-lives", 1, 3 * first, 5 * ms},
		{"two samples: the half-life doubles", 2, 2 * first, 20 * ms},
		{"warm: the full half-life", warmupSamples, decayHalfLife, 20 * ms},
		{"past warm-up: no longer", 3 * warmupSamples, 2 * decayHalfLife, 10 * ms},
		{"stale", warmupSamples, staleAfter + 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock()
			e := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
			for range tt.samples {
				e.Acquire()(40*ms, Success)
			}
			clk.Advance(tt.after)
			got := time.Duration(e.recentLatency(clk.Now().UnixNano()))
			if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("recentLatency = %v, want %v", got, tt.want)
			}
			if e.Latency() != 40*ms {
				t.Fatalf("Latency = %v, want the last average, 40ms, unfaded", e.Latency())
			}
		})
	}

	// The next sample starts from the faded estimate: 40 ms faded to 10 ms,
	// then a 2 ms sample moves it a quarter of the way down.
	clk := testkit.NewClock()
	e := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.1:80")
	for range warmupSamples {
		e.Acquire()(40*ms, Success)
	}
	clk.Advance(2 * decayHalfLife)
	e.Acquire()(2*ms, Success)
	if got, want := e.Latency(), 10*ms-2*ms; got < want-time.Microsecond || got > want+time.Microsecond {
		t.Fatalf("after a pause and a fast sample: %v, want %v", got, want)
	}
	// A faded estimate never reads as "unmeasured".
	tiny := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.2:80")
	tiny.Acquire()(0, Success) // 1 ns
	clk.Advance(staleAfter)
	if got := tiny.recentLatency(clk.Now().UnixNano()); got != 1 {
		t.Fatalf("faded to %d ns, want the 1 ns floor", got)
	}
}

func TestInFlight(t *testing.T) {
	e := NewPool(PoolOptions{}).Endpoint("10.0.0.1:80")
	r1, r2 := e.Acquire(), e.Acquire()
	if got := e.InFlight(); got != 2 {
		t.Fatalf("InFlight = %d, want 2", got)
	}
	r1(time.Millisecond, Success)
	r2(time.Millisecond, Failure)
	if got := e.InFlight(); got != 0 {
		t.Fatalf("InFlight = %d, want 0", got)
	}
}

func TestPoolReuseAndPrune(t *testing.T) {
	clk := testkit.NewClock()
	p := NewPool(PoolOptions{Now: clk.Now})
	if !p.Now().Equal(clk.Now()) {
		t.Fatalf("Now = %v, want the injected clock's %v", p.Now(), clk.Now())
	}
	// "Build" a table, give it state, then "rebuild" with an overlapping set.
	first := []*Endpoint{p.Endpoint("a:80"), p.Endpoint("b:80"), p.Endpoint("c:80")}
	release := first[0].Acquire()
	first[1].Acquire()(7*time.Millisecond, Success)

	second := []*Endpoint{p.Endpoint("b:80"), p.Endpoint("a:80"), p.Endpoint("d:80")}
	if second[1] != first[0] || second[0] != first[1] {
		t.Fatal("rebuild got new Endpoints for existing addresses")
	}
	if second[1].InFlight() != 1 || second[0].Latency() != 7*time.Millisecond {
		t.Fatal("rebuild lost statistics")
	}
	if p.Len() != 4 {
		t.Fatalf("Len = %d, want 4", p.Len())
	}

	inUse := map[string]bool{}
	for _, e := range second {
		inUse[e.Addr] = true
	}
	dropped := p.Prune(func(a string) bool { return inUse[a] })
	if want := []string{"c:80"}; !slices.Equal(dropped, want) {
		t.Fatalf("Prune dropped %v, want %v", dropped, want)
	}
	if p.Len() != 3 {
		t.Fatalf("Len after Prune = %d, want 3", p.Len())
	}
	if p.Endpoint("a:80") != first[0] {
		t.Fatal("Prune dropped a kept endpoint")
	}
	if e := p.Endpoint("c:80"); e == first[2] {
		t.Fatal("a pruned address came back with its old Endpoint")
	}
	// An old table's request still completes against its Endpoint.
	release(time.Millisecond, Success)
	if first[0].InFlight() != 0 {
		t.Fatal("release after rebuild did not count")
	}
	if got := p.Prune(func(string) bool { return true }); len(got) != 0 {
		t.Fatalf("Prune keeping everything dropped %v", got)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Success: "success", ConnectFailure: "connect-failure", Failure: "failure", 9: "unknown"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestLeastEjected(t *testing.T) {
	clk := testkit.NewClock()
	p := NewPool(PoolOptions{Now: clk.Now})
	a, b, c := p.Endpoint("10.0.0.1:80"), p.Endpoint("10.0.0.2:80"), p.Endpoint("10.0.0.3:80")
	if got := LeastEjected(nil); got != nil {
		t.Fatalf("no endpoints: got %v", got)
	}
	a.Acquire()(time.Millisecond, ConnectFailure) // ejected until t+1s
	clk.Advance(100 * time.Millisecond)
	b.Acquire()(time.Millisecond, ConnectFailure) // ejected until t+1.1s
	c.SetHealthy(false)                           // down by the active check: never
	if got := LeastEjected([]*Endpoint{b, a, c}); got != a {
		t.Fatalf("got %v, want the endpoint whose ejection ends first", got)
	}
	a.SetHealthy(false)
	b.SetHealthy(false)
	if got := LeastEjected([]*Endpoint{a, b, c}); got != nil {
		t.Fatalf("all down: got %v", got.Addr)
	}
}

// TestAcquireTimed: the release of AcquireTimed takes the caller's reading
// of the system clock when the pool's clock is the system's, and reads
// none of its own; the pool's own clock otherwise (a fake one, or a
// reading that is not the system clock's).
func TestAcquireTimed(t *testing.T) {
	reads := 0
	counting := func() time.Time { reads++; return time.Now() }
	e := NewPool(PoolOptions{Now: counting}).Endpoint("10.0.0.1:80")
	reads = 0
	end := time.Now()
	e.AcquireTimed()(end, time.Millisecond, ConnectFailure)
	if reads != 0 {
		t.Errorf("the release read the pool's clock %d times, given a reading of the system clock", reads)
	}
	if got, want := e.Health(end).EjectedUntil, end.Add(DefaultBaseEjection); !got.Equal(want) {
		t.Errorf("ejected until %v, want %v (from the reading passed)", got, want)
	}
	if e.InFlight() != 0 {
		t.Errorf("in flight %d after the release", e.InFlight())
	}
	e.AcquireTimed()(time.Time{}, 0, Abandoned)
	if reads != 1 {
		t.Errorf("the release read the pool's clock %d times given no reading, want 1", reads)
	}

	clk := testkit.NewClock()
	f := NewPool(PoolOptions{Now: clk.Now}).Endpoint("10.0.0.2:80")
	f.AcquireTimed()(time.Now(), time.Millisecond, ConnectFailure)
	if got, want := f.Health(clk.Now()).EjectedUntil, clk.Now().Add(DefaultBaseEjection); !got.Equal(want) {
		t.Errorf("fake clock: ejected until %v, want %v (the pool's clock, not the system's)", got, want)
	}
}
