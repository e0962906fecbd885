package balancer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/internal/opt"
	"github.com/swarmgate/swarmgate/route"
)

// healthBodyLimit is how much of a check's response body is read, so the
// connection can be reused without reading an unbounded body.
const healthBodyLimit = 4 << 10

// HealthCheck is an active health check: every Interval it sends
// GET Scheme://addr/Path to each endpoint and marks it healthy on a 2xx or
// 3xx answer within Timeout, down on anything else. Redirects are not
// followed. One failed check takes an endpoint out, one passed check brings
// it back.
type HealthCheck struct {
	Path     string        // request path and query; "" is "/"
	Interval time.Duration // between rounds; zero is route.DefaultHealthInterval
	Timeout  time.Duration // per check; zero is route.DefaultHealthTimeout, never more than Interval

	// Client sends the checks; its Transport decides TLS and HTTP/2. If nil,
	// Run uses a private client without proxy and closes its idle
	// connections when it returns.
	Client *http.Client

	Scheme string // "http" (zero) or "https"

	// OnCheck, if set, is called after every completed check with nil for
	// healthy or the reason the endpoint is down. It may be called from
	// several goroutines at once.
	OnCheck func(e *Endpoint, err error)
}

// Run checks eps at once and then on a ticker until ctx is done. Checks of
// one round run in parallel, and a round ends before the next starts. A
// check cut short by ctx changes nothing. When Run returns, endpoints keep
// their last result: call SetHealthy(true) on an endpoint no longer checked.
func (h HealthCheck) Run(ctx context.Context, eps []*Endpoint) {
	opt.Positive(&h.Interval, route.DefaultHealthInterval)
	opt.Positive(&h.Timeout, route.DefaultHealthTimeout)
	h.Timeout = min(h.Timeout, h.Interval)
	if h.Scheme == "" {
		h.Scheme = "http"
	}
	if !strings.HasPrefix(h.Path, "/") {
		h.Path = "/" + h.Path
	}
	var client http.Client
	if h.Client != nil {
		client = *h.Client // a copy, so CheckRedirect below leaves the caller's client alone
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // checks go to task addresses, never through an HTTP proxy
		defer tr.CloseIdleConnections()
		client.Transport = tr
	}
	// A redirect answers the check; following it could leave the cluster.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tick := time.NewTicker(h.Interval)
	defer tick.Stop()
	for {
		h.round(ctx, &client, eps)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (h HealthCheck) round(ctx context.Context, c *http.Client, eps []*Endpoint) {
	var wg sync.WaitGroup
	for _, e := range eps {
		wg.Go(func() {
			err := h.check(ctx, c, e)
			if ctx.Err() != nil {
				return
			}
			e.SetHealthy(err == nil)
			if h.OnCheck != nil {
				h.OnCheck(e, err)
			}
		})
	}
	wg.Wait()
}

func (h HealthCheck) check(ctx context.Context, c *http.Client, e *Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	url := h.Scheme + "://" + e.Addr + h.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("balancer: health check %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "swarmgate-health")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("balancer: health check: %w", err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, healthBodyLimit)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("balancer: health check %s: status %d", url, resp.StatusCode)
	}
	return nil
}
