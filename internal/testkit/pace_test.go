package testkit

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	var conns, reqs atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reqs.Add(1) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	var sent atomic.Int64
	took := Pace(context.Background(), PaceOptions{Rate: 200, KeepAlive: 2, Fresh: 2, Duration: 5 * time.Second, Max: 100},
		func(c *http.Client) {
			sent.Add(1)
			if resp, err := c.Get(srv.URL); err == nil {
				resp.Body.Close()
			}
		})
	if sent.Load() != 100 || reqs.Load() != 100 {
		t.Errorf("sent %d, served %d; want 100 (Max)", sent.Load(), reqs.Load())
	}
	// 100 requests at 200/s take about half a second.
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("took %v; want about 500ms at 200 req/s", took)
	}
	// Two keep-alive clients hold a connection each; the fresh ones open
	// one per request: about 50 + 2.
	if n := conns.Load(); n < 45 || n > 60 {
		t.Errorf("%d connections; want about 52", n)
	}

	// Duration ends it before Max.
	sent.Store(0)
	took = Pace(context.Background(), PaceOptions{Rate: 50, KeepAlive: 1, Duration: 300 * time.Millisecond, Max: 1000},
		func(*http.Client) { sent.Add(1) })
	if n := sent.Load(); n < 5 || n > 25 || took > 2*time.Second {
		t.Errorf("sent %d in %v; want about 15 in 300ms", n, took)
	}

	// An answer still awaited when the load stops (a request a fault
	// holds) is waited for, but the time is the load's: 300 ms, not 1.3 s.
	sent.Store(0)
	start := time.Now()
	took = Pace(context.Background(), PaceOptions{Rate: 50, KeepAlive: 1, Duration: 300 * time.Millisecond, Max: 1000},
		func(*http.Client) {
			if sent.Add(1) == 10 {
				time.Sleep(time.Second)
			}
		})
	if waited := time.Since(start); took < 250*time.Millisecond || took > 900*time.Millisecond || waited < time.Second {
		t.Errorf("Pace returned after %v with %v; want after the held answer (1 s), with the load's 300ms", waited, took)
	}
}
