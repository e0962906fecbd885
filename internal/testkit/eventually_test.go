package testkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	t.Run("done at once", func(t *testing.T) {
		calls := 0
		if err := Wait(time.Hour, time.Hour, func() error { calls++; return nil }); err != nil || calls != 1 {
			t.Fatalf("err %v after %d calls, want nil after 1", err, calls)
		}
	})
	t.Run("done later", func(t *testing.T) {
		calls := 0
		err := Wait(5*time.Second, time.Millisecond, func() error {
			if calls++; calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("never", func(t *testing.T) {
		start := time.Now()
		calls := 0
		last := errors.New("the last state")
		err := Wait(50*time.Millisecond, 20*time.Millisecond, func() error {
			calls++
			if calls > 1 {
				return last
			}
			return errors.New("the first state")
		})
		took := time.Since(start)
		if !errors.Is(err, last) || !strings.Contains(err.Error(), "50ms") {
			t.Fatalf("err = %v, want the last error and the timeout", err)
		}
		// Calls at 0, 20 and 40 ms, and once more at the deadline; fewer
		// when sleeps overrun on a loaded machine, never more.
		if calls < 2 || calls > 4 {
			t.Errorf("%d calls, want 2 to 4", calls)
		}
		if took < 50*time.Millisecond || took > 5*time.Second {
			t.Errorf("gave up after %v, want at the 50ms deadline", took)
		}
	})
	t.Run("default interval", func(t *testing.T) {
		calls := 0
		Wait(5*DefaultInterval-time.Millisecond, 0, func() error { calls++; return errors.New("no") })
		if calls < 2 || calls > 6 {
			t.Errorf("%d calls in five default intervals, want 2 to 6", calls)
		}
	})
}

// fatalRecorder is a testing.TB whose Fatal records the failure instead of
// ending the test.
type fatalRecorder struct {
	testing.TB
	failed string
}

func (r *fatalRecorder) Helper()           {}
func (r *fatalRecorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	r := &fatalRecorder{TB: t}
	Eventually(r, time.Second, time.Millisecond, func() error { return nil })
	if r.failed != "" {
		t.Fatalf("failed on a condition that holds: %s", r.failed)
	}
	Eventually(r, 10*time.Millisecond, time.Millisecond, func() error { return errors.New("the edge is not ready") })
	if !strings.Contains(r.failed, "the edge is not ready") || !strings.Contains(r.failed, "10ms") {
		t.Fatalf("failure %q, want the condition's error and the timeout", r.failed)
	}
}

func TestReceive(t *testing.T) {
	ch := make(chan error, 1)
	want := errors.New("exit 1")
	ch <- want
	if got := Receive(t, ch, time.Second, "exit"); got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
	r := &fatalRecorder{TB: t}
	if got := Receive(r, ch, 10*time.Millisecond, "exit of the edge"); got != nil || r.failed != "no exit of the edge within 10ms" {
		t.Fatalf("got %v, failure %q", got, r.failed)
	}
}
