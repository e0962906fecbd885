package socketproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// flights coalesces identical concurrent requests: while one upstream request
// for a key is in flight, others with the same key wait for its response
// instead of sending their own. Nothing is kept once it completes, so no
// client ever gets an answer older than its own arrival minus one round trip.
type flights struct {
	mu    sync.Mutex // guards calls
	calls map[string]*call
}

// call is one upstream request and the clients waiting for it.
type call struct {
	done chan struct{} // closed when res/err are set
	res  *bufferedResponse
	err  error
}

// bufferedResponse is an upstream response read to its end.
type bufferedResponse struct {
	status int
	header http.Header
	body   []byte
}

// join returns the call in flight for key, or a new one; leader is true for
// the caller that must perform it.
func (f *flights) join(key string) (c *call, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c, false
	}
	c = &call{done: make(chan struct{})}
	f.calls[key] = c
	return c, true
}

// finish publishes the result of c and forgets key.
func (f *flights) finish(key string, c *call, res *bufferedResponse, err error) {
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	c.res, c.err = res, err
	close(c.done)
}

// serveCoalesced answers r from a shared upstream request. The upstream
// request runs detached from any one client, so the first client leaving
// does not fail the others.
func (p *Proxy) serveCoalesced(w http.ResponseWriter, r *http.Request, e Endpoint, target string) {
	key := r.Method + " " + target
	c, leader := p.flights.join(key)
	if leader {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			res, err := p.fetch(e, r.Method, target)
			p.flights.finish(key, c, res, err)
		}()
	} else {
		p.m.coalesced.WithLabelValues(string(e)).Inc()
	}
	select {
	case <-c.done:
	case <-r.Context().Done():
		return
	}
	if c.err != nil {
		p.upstreamFailed(w, r, c.err)
		return
	}
	copyHeader(w.Header(), c.res.header)
	if r.Method != http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(c.res.body)))
	}
	w.WriteHeader(c.res.status)
	if r.Method != http.MethodHead {
		w.Write(c.res.body)
	}
}

// fetch performs one upstream request and reads the response, up to
// MaxResponseBytes.
func (p *Proxy) fetch(e Endpoint, method, target string) (*bufferedResponse, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.opt.UpstreamTimeout)
	defer cancel()
	req, err := p.newUpstreamRequest(ctx, method, target)
	if err != nil {
		return nil, err
	}
	p.m.upstream.WithLabelValues(string(e)).Inc()
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("socketproxy: %s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.opt.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("socketproxy: %s %s: reading response: %w", method, target, err)
	}
	if int64(len(body)) > p.opt.MaxResponseBytes {
		return nil, fmt.Errorf("socketproxy: %s %s: response larger than %d bytes", method, target, p.opt.MaxResponseBytes)
	}
	h := endToEnd(resp.Header)
	h.Del("Content-Length") // set from the body actually read
	if method == http.MethodHead && resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	return &bufferedResponse{status: resp.StatusCode, header: h, body: body}, nil
}
