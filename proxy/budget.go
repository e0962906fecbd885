package proxy

import (
	"sync/atomic"
	"time"
)

// retryBudget bounds a route's retries to a share of its requests, so that
// retries cannot multiply the load of an outage: the retry budgets of Finagle
// and Linkerd. Every request deposits budgetRatio of a token; a retry takes a
// whole one. budgetFloor retries per second are always allowed, so a quiet
// route can still retry. Tokens are counted in thousandths.
type retryBudget struct {
	tokens atomic.Int64 // thousandths of a retry
	last   atomic.Int64 // unix nanoseconds of the last floor refill
}

const (
	budgetRatio = 200     // thousandths deposited per request: 20% of requests may be retried
	budgetFloor = 10      // retries per second always allowed
	budgetCap   = 100_000 // at most 100 retries saved up
)

// deposit records one request.
func (b *retryBudget) deposit() {
	if b.tokens.Load() < budgetCap {
		b.tokens.Add(budgetRatio)
	}
}

// withdraw takes one retry from the budget, reporting whether there was one.
func (b *retryBudget) withdraw(now time.Time) bool {
	t := now.UnixNano()
	if last := b.last.Load(); t > last && b.last.CompareAndSwap(last, t) {
		refill := min((t-last)*budgetFloor*1000/int64(time.Second), budgetCap)
		if last == 0 {
			refill = budgetFloor * 1000
		}
		if b.tokens.Add(refill) > budgetCap {
			b.tokens.Store(budgetCap)
		}
	}
	for {
		v := b.tokens.Load()
		if v < 1000 {
			return false
		}
		if b.tokens.CompareAndSwap(v, v-1000) {
			return true
		}
	}
}
