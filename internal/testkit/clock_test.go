package testkit

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	c := NewClock()
	t0 := c.Now()
	if !t0.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("starts at %v", t0)
	}
	time.Sleep(time.Millisecond)
	if !c.Now().Equal(t0) {
		t.Fatal("moved without Advance")
	}
	c.Advance(90 * time.Minute)
	if got := c.Now().Sub(t0); got != 90*time.Minute {
		t.Fatalf("advanced %v, want 90m", got)
	}
	c.Advance(-time.Hour)
	if got := c.Now().Sub(t0); got != 30*time.Minute {
		t.Fatalf("after a step back: %v, want 30m", got)
	}

	// Concurrent use (run with -race): every Advance counts.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Advance(time.Nanosecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got := c.Now().Sub(t0); got != 30*time.Minute+8000 {
		t.Fatalf("after concurrent advances: %v", got)
	}
}
