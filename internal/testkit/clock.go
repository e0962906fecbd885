package testkit

import (
	"sync/atomic"
	"time"
)

// start is where a NewClock starts: a fixed instant, so that what a test
// sees does not depend on the day it runs.
var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a fake clock for code that takes a `Now func() time.Time`: it
// stands still until the test moves it with Advance, so a test of backoffs,
// expiries or rotations sleeps for nothing. It is safe for concurrent use.
// The zero value stands at the Unix epoch.
type Clock struct {
	ns atomic.Int64 // Unix nanoseconds
}

// NewClock returns a Clock at 2025-01-01 00:00 UTC.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now returns the clock's time. Pass the method value (clk.Now) as an
// injected clock.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
