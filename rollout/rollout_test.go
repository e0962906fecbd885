package rollout

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// fakeWeights records every Set.
type fakeWeights struct {
	old, new int
	sets     [][2]int
	failSet  error
}

func (w *fakeWeights) Get(context.Context) (int, int, error) { return w.old, w.new, nil }
func (w *fakeWeights) Set(_ context.Context, old, new int) error {
	if w.failSet != nil {
		return w.failSet
	}
	w.old, w.new = old, new
	w.sets = append(w.sets, [2]int{old, new})
	return nil
}

// fakeEdges are two edges that each carry half of rps requests a second,
// split between the services by the weights in force, with the error ratio
// and latency of each service; counters grow when the fake clock runs.
type fakeEdges struct {
	w        *fakeWeights
	rps      float64
	errRatio map[string]float64
	latency  map[string]float64 // seconds, every request
	counts   [2]Sample
	failRead error
	// newDown: NEW has no task in rotation, so the edges give its share
	// to OLD (proxy's group.pick).
	newDown bool
}

var bounds = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

func (e *fakeEdges) Read(context.Context) ([]Sample, error) {
	if e.failRead != nil {
		return nil, e.failRead
	}
	out := make([]Sample, 2)
	for i, c := range e.counts {
		out[i] = Sample{}
		for k, v := range c {
			out[i][k] = Stats{Requests: v.Requests, Errors: v.Errors, Buckets: append([]Bucket(nil), v.Buckets...)}
		}
	}
	return out, nil
}

// run counts d seconds of traffic.
func (e *fakeEdges) run(d time.Duration) {
	total := float64(e.w.old + e.w.new)
	for i := range e.counts {
		if e.counts[i] == nil {
			e.counts[i] = Sample{}
		}
		weights := map[string]int{"old": e.w.old, "new": e.w.new}
		if e.newDown {
			weights = map[string]int{"old": e.w.old + e.w.new, "new": 0}
		}
		for svc, w := range weights {
			n := e.rps / 2 * d.Seconds() * float64(w) / total
			st := e.counts[i][svc]
			st.Requests += n
			st.Errors += n * e.errRatio[svc]
			var b []Bucket
			for _, ub := range bounds {
				c := 0.0
				if e.latency[svc] <= ub {
					c = n
				}
				b = append(b, Bucket{ub, c})
			}
			b = append(b, Bucket{math.Inf(1), n})
			st.Buckets = addBuckets(st.Buckets, b, 1)
			e.counts[i][svc] = st
		}
	}
}

// fakeClock runs the edges' traffic for each Sleep, and cancels at the
// Sleep numbered cancelAt (1-based) if set.
type fakeClock struct {
	edges    *fakeEdges
	slept    []time.Duration
	cancelAt int
	cancel   context.CancelFunc
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	if len(c.slept) == c.cancelAt {
		c.cancel()
		return ctx.Err()
	}
	c.edges.run(d)
	return nil
}

func setup(errNew, latNew float64) (*fakeWeights, *fakeEdges, *fakeClock) {
	w := &fakeWeights{old: 100, new: 0}
	e := &fakeEdges{w: w, rps: 1000, errRatio: map[string]float64{"new": errNew}, latency: map[string]float64{"old": 0.02, "new": latNew}}
	return w, e, &fakeClock{edges: e}
}

func options(w *fakeWeights, e *fakeEdges, c *fakeClock, steps []int, progress *[]Step) Options {
	return Options{Old: "old", New: "new", Steps: steps, Interval: time.Minute,
		Thresholds: Thresholds{MaxErrorRatio: 0.01, MaxP99Ratio: 1.5},
		Weights:    w, Metrics: e, Clock: c, Progress: func(s Step) { *progress = append(*progress, s) }}
}

func TestRunPromotes(t *testing.T) {
	w, e, c := setup(0, 0.02)
	var steps []Step
	res, err := Run(context.Background(), options(w, e, c, []int{1, 5, 25, 50, 100}, &steps))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{99, 1}, {95, 5}, {75, 25}, {50, 50}, {0, 100}}
	if !equalSets(w.sets, want) || res.OldWeight != 0 || res.NewWeight != 100 {
		t.Fatalf("weights set %v, result %+v", w.sets, res)
	}
	if len(steps) != 5 || len(c.slept) != 5 || c.slept[0] != time.Minute {
		t.Fatalf("%d steps reported, slept %v", len(steps), c.slept)
	}
	// Step 2: 5% of 60,000 requests.
	if s := steps[1]; math.Abs(s.NewStats.Requests-3000) > 1e-6 || math.Abs(s.Old.Requests-57000) > 1e-6 || !s.Verdict.OK {
		t.Errorf("step 2: %+v", s)
	}
	// At 100 OLD has no request: its p99 is unknown, not judged.
	if s := steps[4]; !math.IsNaN(s.OldP99) || s.Old.Requests != 0 || !s.Verdict.OK {
		t.Errorf("step 5: %+v", s)
	}
}

func TestRunRollsBackOnErrors(t *testing.T) {
	w, e, c := setup(0.2, 0.02)
	var steps []Step
	res, err := Run(context.Background(), options(w, e, c, []int{1, 5, 100}, &steps))
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "step 1 (1%)") || !strings.Contains(err.Error(), "error ratio 0.2000") {
		t.Fatalf("err = %v", err)
	}
	if !equalSets(w.sets, [][2]int{{99, 1}, {100, 0}}) || res.OldWeight != 100 || res.NewWeight != 0 {
		t.Fatalf("weights set %v, result %+v", w.sets, res)
	}
	if len(steps) != 1 || steps[0].NewRatio != 0.2 || steps[0].Verdict.OK {
		t.Fatalf("steps %+v", steps)
	}
}

func TestRunRollsBackOnLatency(t *testing.T) {
	w, e, c := setup(0, 0.2) // ten times OLD's 20 ms
	var steps []Step
	_, err := Run(context.Background(), options(w, e, c, []int{10, 100}, &steps))
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "p99") {
		t.Fatalf("err = %v", err)
	}
	if w.old != 100 || w.new != 0 {
		t.Fatalf("weights left %d/%d", w.old, w.new)
	}
	if p := steps[0].NewP99; p < 0.1 || p > 0.25 {
		t.Errorf("NEW p99 %v", p)
	}
}

// TestRunRollsBackWithoutNew: a NEW with no task in rotation answers
// nothing, the edges send its share to OLD, and no error or latency is
// against it; its first step fails all the same, on the requests its weight
// should have brought it, instead of promoting it to 100.
func TestRunRollsBackWithoutNew(t *testing.T) {
	w, e, c := setup(0, 0.02)
	e.newDown = true
	var steps []Step
	res, err := Run(context.Background(), options(w, e, c, []int{1, 5, 100}, &steps))
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "step 1 (1%): NEW answered none of the step's 60000 requests") ||
		!strings.Contains(err.Error(), "about 600") {
		t.Fatalf("err = %v", err)
	}
	if !equalSets(w.sets, [][2]int{{99, 1}, {100, 0}}) || res.OldWeight != 100 || res.NewWeight != 0 {
		t.Fatalf("weights set %v, result %+v", w.sets, res)
	}
	if len(steps) != 1 || steps[0].NewStats.Requests != 0 || steps[0].Old.Requests != 60000 {
		t.Fatalf("steps %+v", steps)
	}
}

// TestRunRollsBackWithoutTraffic: a step in which neither service answered
// a request cannot be judged, and is not passed.
func TestRunRollsBackWithoutTraffic(t *testing.T) {
	w, e, c := setup(0, 0.02)
	e.rps = 0
	var steps []Step
	_, err := Run(context.Background(), options(w, e, c, []int{50, 100}, &steps))
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "no request reached OLD or NEW") {
		t.Fatalf("err = %v", err)
	}
	if w.old != 100 || w.new != 0 || len(steps) != 1 {
		t.Fatalf("weights %d/%d, steps %+v", w.old, w.new, steps)
	}
}

func TestRunInterrupted(t *testing.T) {
	w, e, c := setup(0, 0.02)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.cancelAt, c.cancel = 3, cancel // during step 3
	var steps []Step
	res, err := Run(ctx, options(w, e, c, []int{1, 5, 25, 100}, &steps))
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v", err)
	}
	// Step 3 set 75/25 and was not judged: the weights go back to step 2's.
	if !equalSets(w.sets, [][2]int{{99, 1}, {95, 5}, {75, 25}, {95, 5}}) || res.OldWeight != 95 || res.NewWeight != 5 || res.Last.N != 2 {
		t.Fatalf("weights set %v, result %+v", w.sets, res)
	}
}

func TestRunMetricsFail(t *testing.T) {
	w, e, c := setup(0, 0.02)
	e.failRead = errors.New("edge 2: connection refused")
	var steps []Step
	_, err := Run(context.Background(), options(w, e, c, []int{50, 100}, &steps))
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
	if w.old != 100 || w.new != 0 || len(steps) != 0 {
		t.Fatalf("weights %d/%d, steps %v", w.old, w.new, steps)
	}
}

func TestCheckSteps(t *testing.T) {
	for _, tt := range []struct {
		steps []int
		ok    bool
	}{
		{[]int{1, 5, 25, 50, 100}, true},
		{[]int{100}, true},
		{nil, false},
		{[]int{5, 1, 100}, false},
		{[]int{0, 100}, false},
		{[]int{50}, false},
		{[]int{50, 101}, false},
	} {
		if err := CheckSteps(tt.steps); (err == nil) != tt.ok {
			t.Errorf("CheckSteps(%v) = %v", tt.steps, err)
		}
	}
}

func TestJudge(t *testing.T) {
	th := Thresholds{MaxErrorRatio: 0.01, MaxP99Ratio: 1.5}
	hist := func(n float64, atMost float64) []Bucket {
		var b []Bucket
		for _, ub := range bounds {
			c := 0.0
			if atMost <= ub {
				c = n
			}
			b = append(b, Bucket{ub, c})
		}
		return append(b, Bucket{math.Inf(1), n})
	}
	old := Stats{Requests: 1000, Buckets: hist(1000, 0.02)}
	fast := Stats{Requests: 1000, Buckets: hist(1000, 0.002)}
	for _, tt := range []struct {
		name    string
		old     Stats
		new     Stats
		percent int
		ok      bool
	}{
		{"healthy", old, Stats{Requests: 100, Errors: 1, Buckets: hist(100, 0.02)}, 10, true},
		{"errors", old, Stats{Requests: 100, Errors: 2, Buckets: hist(100, 0.02)}, 10, false},
		{"slow", old, Stats{Requests: 100, Buckets: hist(100, 0.08)}, 10, false},
		{"slow but too few requests to tell", old, Stats{Requests: 99, Buckets: hist(99, 0.08)}, 10, true},
		// 1% of 1,000: NEW's weight brought it 10 requests, and it answered none.
		{"NEW not in rotation", old, Stats{}, 1, false},
		// 1% of 900: its share may have rounded to nothing.
		{"NEW's share too small to tell", Stats{Requests: 900, Buckets: hist(900, 0.02)}, Stats{}, 1, true},
		{"no traffic", Stats{}, Stats{}, 50, false},
		{"all of it NEW's, at 100", Stats{}, Stats{Requests: 1000, Buckets: hist(1000, 0.02)}, 100, true},
	} {
		if v := Judge(tt.old, tt.new, tt.percent, th); v.OK != tt.ok {
			t.Errorf("%s: %+v", tt.name, v)
		}
	}
	// 2 ms against 4 ms is twice, within the slack; 2 ms against 40 ms is not.
	th.P99Slack = 5 * time.Millisecond
	for _, tt := range []struct {
		name string
		new  Stats
		ok   bool
	}{
		{"within the slack", Stats{Requests: 1000, Buckets: hist(1000, 0.004)}, true},
		{"beyond the slack", Stats{Requests: 1000, Buckets: hist(1000, 0.04)}, false},
	} {
		if v := Judge(fast, tt.new, 50, th); v.OK != tt.ok {
			t.Errorf("%s: %+v", tt.name, v)
		}
	}
}

func equalSets(a, b [][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
