package testkit

import (
	"fmt"
	"testing"
	"time"
)

// DefaultInterval is how long Wait and Eventually sleep between calls of
// the condition when the interval given is zero.
const DefaultInterval = 10 * time.Millisecond

// Wait calls cond until it returns nil, sleeping interval between calls
// (DefaultInterval if zero), and gives up once timeout has passed. It calls
// cond at least once, and once more at the deadline. It returns nil as soon
// as cond does; otherwise cond's last error, which should say what was
// waited for and what was seen instead.
//
// Wait is for code without a testing.TB (TestMain, setup shared by a
// package); tests call Eventually.
func Wait(timeout, interval time.Duration, cond func() error) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("still not done after %s: %w", timeout, err)
		}
		time.Sleep(min(interval, left))
	}
}

// Eventually is Wait for a test: it fails t with cond's last error when
// timeout passes first. It waits for something the test cannot be told
// about directly (a task running, a goroutine reaching a point, a file
// appearing); what the test asserts must never depend on how long that
// took. cond runs on the calling goroutine, so it may call t.Fatal itself
// to give up early on a failure that waiting cannot fix.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() error) {
	t.Helper()
	if err := Wait(timeout, interval, cond); err != nil {
		t.Fatal(err)
	}
}

// Receive returns the next value from ch, and fails t if none arrives
// within timeout. what names the value as the failure reads: "no <what>
// within <timeout>" ("no exit of the old edge within 15s").
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("no %s within %s", what, timeout)
	}
	var zero T
	return zero
}
