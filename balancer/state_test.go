package balancer

import (
	"testing"
	"time"
)

// TestHealth: the copy follows failures, ejection, the probing after it,
// and a failed active check.
func TestHealth(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPool(PoolOptions{Now: func() time.Time { return now }, MaxFailures: 2, BaseEjection: 4 * time.Second})
	e := p.Endpoint("10.0.0.1:80")
	if h := e.Health(now); h != (Health{}) {
		t.Fatalf("new endpoint: %+v", h)
	}
	e.Acquire()(time.Millisecond, Failure)
	if h := e.Health(now); h.Failures != 1 || !h.EjectedUntil.IsZero() {
		t.Fatalf("after one failure: %+v", h)
	}
	e.Acquire()(time.Millisecond, Failure)
	h := e.Health(now)
	if want := now.Add(4 * time.Second); !h.EjectedUntil.Equal(want) || h.Ejections != 1 || h.Failures != 0 {
		t.Fatalf("after two failures: %+v, want ejected until %v", h, want)
	}
	if h := e.Health(now); h.Probing {
		t.Fatalf("probing while ejected: %+v", h)
	}
	if h := e.Health(now.Add(4 * time.Second)); !h.EjectedUntil.IsZero() || h.Ejections != 1 || !h.Probing {
		t.Fatalf("when the ejection ends: %+v, want probing", h)
	}
	e.SetHealthy(false)
	if h := e.Health(now); !h.Down {
		t.Fatalf("after a failed check: %+v", h)
	}
	e.SetHealthy(true)
	e.Acquire()(time.Millisecond, Success)
	if h := e.Health(now.Add(5 * time.Second)); h != (Health{}) {
		t.Fatalf("after a success: %+v", h)
	}
}
