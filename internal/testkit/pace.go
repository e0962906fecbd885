package testkit

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// PaceOptions shape a constant-rate load: KeepAlive clients that reuse one
// connection and Fresh ones that open a connection per request, together
// sending Rate requests a second until the context ends, Duration passes
// or Max requests were sent.
type PaceOptions struct {
	Rate            int
	KeepAlive       int
	Fresh           int
	Duration        time.Duration
	Max             int
	RequestTimeout  time.Duration // per request; 10 s if zero
	ConnectTimeout  time.Duration // per connect; 5 s if zero
	IdleConnTimeout time.Duration // of a keep-alive client's connection; 30 s if zero
}

// Pace runs the load o describes: each client calls send with its own
// http.Client on its own schedule (open loop: one slow answer does not slow
// the others), the clients staggered over one interval so the rate is
// smooth. It returns when every call has returned, with the time the load
// was sent over: until it was stopped (the context, Duration) or every
// client had sent its share. The answers still awaited after that do not
// count, so that requests a fault holds for seconds (a lost node's) do not
// make the rate that was sent look lower.
// Bounded in count (Max) and in time (Duration); it panics on options that
// bound neither, which only a test can write.
func Pace(ctx context.Context, o PaceOptions, send func(c *http.Client)) time.Duration {
	clients := o.KeepAlive + o.Fresh
	if clients == 0 || o.Rate <= 0 || o.Duration <= 0 || o.Max <= 0 {
		panic("testkit.Pace: rate, clients, duration and max requests must be positive")
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	interval := time.Duration(float64(time.Second) * float64(clients) / float64(o.Rate))
	perClient := (o.Max + clients - 1) / clients
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: o.ConnectTimeout}).DialContext,
			MaxIdleConnsPerHost: 1,
			DisableKeepAlives:   i >= o.KeepAlive,
			IdleConnTimeout:     o.IdleConnTimeout,
		}
		c := &http.Client{Transport: tr, Timeout: o.RequestTimeout}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			next := start.Add(interval * time.Duration(i) / time.Duration(clients))
			for range perClient {
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				if ctx.Err() != nil {
					return
				}
				next = next.Add(interval)
				send(c)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-ctx.Done():
	case <-done:
	}
	sent := time.Since(start)
	<-done
	return sent
}
