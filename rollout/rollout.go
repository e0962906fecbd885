package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Weights reads and sets the swarmgate.weight of the two services.
type Weights interface {
	Get(ctx context.Context) (old, new int, err error)
	Set(ctx context.Context, old, new int) error
}

// Metrics reads every edge's Sample of the two services, one per edge, in
// the same order on every call.
type Metrics interface {
	Read(ctx context.Context) ([]Sample, error)
}

// Clock waits: Sleep returns after d, or ctx's error when ctx ends first.
type Clock interface {
	Sleep(ctx context.Context, d time.Duration) error
}

// Thresholds bound how much worse NEW may do than OLD over a step.
type Thresholds struct {
	// MaxErrorRatio is the largest share of NEW's requests that may be
	// answered 5xx.
	MaxErrorRatio float64
	// MaxP99Ratio is the largest NEW p99 as a multiple of OLD's over the
	// same interval (not judged while OLD has no request: at 100%).
	MaxP99Ratio float64
	// P99Slack is how much slower than OLD's NEW's p99 may be whatever the
	// ratio: on a fast service the histogram's buckets (1, 2.5, 5 ms) are
	// coarser than the ratio, and 2 ms against 3.5 ms is no regression.
	P99Slack time.Duration
}

// MinLatencyRequests is how many requests each service needs in a step for
// the p99s to be compared: the p99 of fewer is their slowest one (a new
// task's first connection), not a percentile.
const MinLatencyRequests = 100

// MinShareRequests is how many requests NEW's weight must have brought it in
// a step (the step's requests times its percentage) for a step in which NEW
// answered none to fail: an edge passes over a member of a weighted group
// that has no task in rotation (none running, or none passing its health
// check) and gives its share to the others, so a NEW that cannot serve
// would otherwise pass every step with nothing against it, up to 100. With
// fewer, NEW's share may round to nothing (1% of 50 requests), and the step
// is judged on what NEW did answer.
const MinShareRequests = 10

// Options configure Run. Every field but Progress is required.
type Options struct {
	Old, New string
	// Steps are NEW's percentages of the weight, increasing, ending at
	// 100: NEW gets weight p and OLD 100-p.
	Steps    []int
	Interval time.Duration // how long each step runs before it is judged
	Thresholds
	Weights Weights
	Metrics Metrics
	Clock   Clock
	// Progress is told every judged step. If nil, nothing is told.
	Progress func(Step)
}

// Step is one judged step: the weights it set and what the edges measured
// for each service while they were in force.
type Step struct {
	N, Of              int // 1-based step number, of how many
	Percent            int
	OldWeight          int
	NewWeight          int
	Old, NewStats      Stats
	Verdict            Verdict
	OldP99, NewP99     float64 // seconds; NaN without requests
	OldRatio, NewRatio float64 // error ratios
}

// Verdict is the judgement of one step.
type Verdict struct {
	OK     bool
	Reason string // why not OK
}

// Errors Run returns; RolledBack and Interrupted carry the step.
var (
	ErrRolledBack  = errors.New("rolled back")
	ErrInterrupted = errors.New("interrupted")
)

// Result is how a rollout ended.
type Result struct {
	// Last is the last judged step (nil if none was).
	Last *Step
	// OldWeight and NewWeight are the weights left in force.
	OldWeight, NewWeight int
}

// CheckSteps validates a list of step percentages: increasing, within
// 1..100, ending at 100.
func CheckSteps(steps []int) error {
	if len(steps) == 0 {
		return errors.New("rollout: no steps")
	}
	prev := 0
	for _, s := range steps {
		if s <= prev || s > 100 {
			return fmt.Errorf("rollout: steps must increase within 1..100, got %v", steps)
		}
		prev = s
	}
	if prev != 100 {
		return fmt.Errorf("rollout: the last step must be 100, got %d", prev)
	}
	return nil
}

// Judge compares NEW's Stats with OLD's over one step in which NEW had
// percent of the weight. A step in which no request reached either service
// fails (nothing can be judged: no traffic, or the edges read are not those
// that serve them), and so does one in which NEW answered none of the
// MinShareRequests or more that its weight should have brought it.
func Judge(old, new Stats, percent int, t Thresholds) Verdict {
	total := old.Requests + new.Requests
	if total == 0 {
		return Verdict{Reason: "no request reached OLD or NEW on the edges during the step: nothing to judge (no traffic, or --edges do not name the edges that serve them)"}
	}
	if share := total * float64(percent) / 100; new.Requests == 0 && share >= MinShareRequests {
		return Verdict{Reason: fmt.Sprintf("NEW answered none of the step's %.0f requests, where its weight (%d%%) should have brought it about %.0f: "+
			"the edges have no task of NEW in rotation (none running, or none passing its health check) and give its share to OLD", total, percent, share)}
	}
	if r := new.ErrorRatio(); new.Requests > 0 && r > t.MaxErrorRatio {
		return Verdict{Reason: fmt.Sprintf("%s error ratio %.4f above %.4f (%.0f of %.0f requests)",
			"NEW", r, t.MaxErrorRatio, new.Errors, new.Requests)}
	}
	if old.Requests < MinLatencyRequests || new.Requests < MinLatencyRequests {
		return Verdict{OK: true}
	}
	op, np := old.Quantile(0.99), new.Quantile(0.99)
	if !math.IsNaN(op) && !math.IsNaN(np) && op > 0 && np > t.MaxP99Ratio*op && np-op > t.P99Slack.Seconds() {
		return Verdict{Reason: fmt.Sprintf("NEW p99 %s is %.2f times OLD's %s, above %.2f",
			seconds(np), np/op, seconds(op), t.MaxP99Ratio)}
	}
	return Verdict{OK: true}
}

func seconds(s float64) string { return time.Duration(s * float64(time.Second)).String() }

// Run shifts the weights step by step. After each step's interval it
// judges what the edges measured for the two services: a failed step puts
// the weights back as they were before the rollout and returns
// ErrRolledBack; an error reading the metrics does the same (a step that
// cannot be judged is not passed). When ctx ends, the weights are left
// where the last judged step put them (the weights before the rollout if
// none was) and Run returns ErrInterrupted. At the end NEW has weight 100
// and OLD 0.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := CheckSteps(o.Steps); err != nil {
		return Result{}, err
	}
	origOld, origNew, err := o.Weights.Get(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("rollout: reading the weights: %w", err)
	}
	res := Result{OldWeight: origOld, NewWeight: origNew}
	// restore sets the weights even after ctx has ended.
	restore := func(old, new int) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := o.Weights.Set(rctx, old, new); err != nil {
			return fmt.Errorf("rollout: putting the weights back to %d/%d: %w", old, new, err)
		}
		res.OldWeight, res.NewWeight = old, new
		return nil
	}
	interrupted := func() (Result, error) {
		if err := restore(res.OldWeight, res.NewWeight); err != nil {
			return res, errors.Join(ErrInterrupted, err)
		}
		return res, ErrInterrupted
	}
	for i, pct := range o.Steps {
		if ctx.Err() != nil {
			return interrupted()
		}
		oldW, newW := 100-pct, pct
		if err := o.Weights.Set(ctx, oldW, newW); err != nil {
			if ctx.Err() != nil {
				return interrupted()
			}
			return res, errors.Join(fmt.Errorf("rollout: setting the weights %d/%d: %w", oldW, newW, err), restore(origOld, origNew))
		}
		before, err := o.Metrics.Read(ctx)
		if err == nil {
			err = o.Clock.Sleep(ctx, o.Interval)
		}
		var after []Sample
		if err == nil {
			after, err = o.Metrics.Read(ctx)
		}
		if ctx.Err() != nil {
			return interrupted()
		}
		if err != nil {
			return res, errors.Join(ErrRolledBack, fmt.Errorf("rollout: step %d: %w", i+1, err), restore(origOld, origNew))
		}
		oldS, newS := sum(before, after, o.Old), sum(before, after, o.New)
		step := &Step{N: i + 1, Of: len(o.Steps), Percent: pct, OldWeight: oldW, NewWeight: newW, Old: oldS, NewStats: newS,
			Verdict: Judge(oldS, newS, pct, o.Thresholds), OldP99: oldS.Quantile(0.99), NewP99: newS.Quantile(0.99),
			OldRatio: oldS.ErrorRatio(), NewRatio: newS.ErrorRatio()}
		res.Last = step
		if o.Progress != nil {
			o.Progress(*step)
		}
		if !step.Verdict.OK {
			return res, errors.Join(fmt.Errorf("%w at step %d (%d%%): %s", ErrRolledBack, step.N, pct, step.Verdict.Reason), restore(origOld, origNew))
		}
		res.OldWeight, res.NewWeight = oldW, newW
	}
	return res, nil
}

// sum adds up, over the edges, what each counted for service between its
// two samples. An edge missing from either (it did not answer) counts
// nothing.
func sum(before, after []Sample, service string) Stats {
	var s Stats
	for i := range after {
		if i >= len(before) {
			break
		}
		s = s.Add(after[i][service].Since(before[i][service]))
	}
	return s
}

// SystemClock is the real clock.
type SystemClock struct{}

// Sleep waits d or until ctx ends.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
