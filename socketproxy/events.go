package socketproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Shared /events streams. The Engine writes one JSON object per line; a hub
// reads them from one upstream subscription and hands every line to every
// subscriber through a buffered channel. A subscriber that falls EventBuffer
// lines behind is disconnected (its client reconnects and resyncs) instead of
// slowing the others. When the upstream stream breaks, the hub reopens it with
// backoff and ?since= the last event it saw, dropping the replayed lines it
// already delivered, so subscribers see no gap; if it cannot reopen within
// ResumeWindow, it disconnects them.

// maxEventLine caps one event line; the Engine's are well under 4 KiB.
const maxEventLine = 1 << 20

// shareable reports whether an /events query may share a stream: since and
// until make a subscription replay or end, so it must be the client's own.
func shareable(query string) bool {
	v, err := url.ParseQuery(query)
	if err != nil {
		return false
	}
	return !v.Has("since") && !v.Has("until")
}

// hubs holds one hub per distinct normalised path and query: the API
// version prefix can change the events' shape, the query their selection.
type hubs struct {
	mu sync.Mutex // guards m; taken before any hub.mu
	m  map[string]*hub
}

// hub is one shared upstream /events subscription.
type hub struct {
	p      *Proxy
	key    string // its entry in hubs.m
	path   string // normalised, with the client's version prefix
	query  string
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed once the first upstream answer is known

	// Set before ready is closed, read-only afterwards.
	header http.Header       // of the upstream 200, for subscribers
	failed *bufferedResponse // the upstream's non-200 answer, if any
	err    error             // the first attempt failed to connect

	mu   sync.Mutex // guards subs
	subs map[*subscriber]struct{}

	// Used by the run goroutine only.
	lastNano  int64    // timeNano of the newest event delivered
	lastLines [][]byte // lines delivered with timeNano == lastNano
	replaying bool     // the stream was reopened with since=: drop what was delivered
}

// subscriber is one client of a hub.
type subscriber struct {
	ch   chan []byte
	gone chan struct{} // closed when the hub drops the subscriber
}

// subscribe adds a subscriber to the hub for path and query, starting the
// hub if there is none.
func (p *Proxy) subscribe(path, query string) (*hub, *subscriber) {
	key := path + "?" + query
	s := &subscriber{ch: make(chan []byte, p.opt.EventBuffer), gone: make(chan struct{})}
	p.hubs.mu.Lock()
	defer p.hubs.mu.Unlock()
	h, ok := p.hubs.m[key]
	if !ok {
		ctx, cancel := context.WithCancel(p.streams)
		h = &hub{p: p, key: key, path: path, query: query, ctx: ctx, cancel: cancel, ready: make(chan struct{}),
			subs: make(map[*subscriber]struct{})}
		p.hubs.m[key] = h
		p.wg.Add(1)
		go h.run()
	}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	p.m.subscribers.Inc()
	return h, s
}

// unsubscribe removes s; the last subscriber to leave stops the hub.
func (p *Proxy) unsubscribe(h *hub, s *subscriber) {
	p.m.subscribers.Dec()
	p.hubs.mu.Lock()
	defer p.hubs.mu.Unlock()
	h.mu.Lock()
	delete(h.subs, s)
	empty := len(h.subs) == 0
	h.mu.Unlock()
	if empty {
		if p.hubs.m[h.key] == h {
			delete(p.hubs.m, h.key)
		}
		h.cancel()
	}
}

// retire removes h from the map so that new subscribers start a fresh hub,
// and disconnects its current subscribers.
func (h *hub) retire() {
	p := h.p
	p.hubs.mu.Lock()
	defer p.hubs.mu.Unlock()
	if p.hubs.m[h.key] == h {
		delete(p.hubs.m, h.key)
	}
	h.mu.Lock()
	for s := range h.subs {
		delete(h.subs, s)
		close(s.gone)
	}
	h.mu.Unlock()
	h.cancel()
}

// broadcast hands line to every subscriber without blocking.
func (h *hub) broadcast(line []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- line:
		default:
			delete(h.subs, s)
			close(s.gone)
			h.p.m.slowSubscribers.Inc()
		}
	}
}

// run keeps the upstream subscription open while the hub has subscribers.
func (h *hub) run() {
	defer h.p.wg.Done()
	// Whatever ends the hub (last client gone, EndStreams, a stream that
	// cannot be resumed) disconnects whoever is still subscribed.
	defer h.retire()
	resp, err := h.open("")
	switch {
	case err != nil:
		h.err = err
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		hdr := endToEnd(resp.Header)
		hdr.Del("Content-Length")
		h.failed = &bufferedResponse{status: resp.StatusCode, header: hdr, body: body}
	default:
		h.header = endToEnd(resp.Header)
		h.header.Del("Date")
	}
	close(h.ready)
	if resp == nil || resp.StatusCode != http.StatusOK {
		return
	}
	// If no event arrives before a break, resume from the moment the
	// stream opened, by the Engine's clock (a second early: a replayed
	// duplicate is harmless, a gap is not).
	opened := time.Now()
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		opened = t
	}
	h.lastNano = opened.Add(-time.Second).UnixNano()
	for {
		h.pump(resp.Body)
		resp.Body.Close()
		if h.ctx.Err() != nil {
			return
		}
		h.p.log.Warn("events stream lost; resubscribing", zap.String("query", truncate(h.query, 256)))
		if resp = h.reopen(); resp == nil {
			return
		}
		h.replaying = true
		h.p.m.resubscribes.Inc()
	}
}

// reopen retries the upstream subscription with backoff and ?since= the
// last event, for up to ResumeWindow. It returns nil when it gives up or
// the hub is stopped.
func (h *hub) reopen() *http.Response {
	deadline := time.Now().Add(h.p.opt.ResumeWindow)
	since := fmt.Sprintf("%d.%09d", h.lastNano/1e9, h.lastNano%1e9)
	for n := 0; ; n++ {
		t := time.NewTimer(h.p.opt.Backoff(n))
		select {
		case <-h.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		resp, err := h.open(since)
		if err == nil && resp.StatusCode == http.StatusOK {
			return resp
		}
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if h.ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			h.p.log.Error("events stream not resumed; disconnecting subscribers", zap.Error(err))
			return nil
		}
	}
}

// open sends the upstream subscription request.
func (h *hub) open(since string) (*http.Response, error) {
	q := h.query
	if since != "" {
		if q != "" {
			q += "&"
		}
		q += "since=" + since
	}
	target := h.path
	if q != "" {
		target += "?" + q
	}
	req, err := h.p.newUpstreamRequest(h.ctx, http.MethodGet, target)
	if err != nil {
		return nil, err
	}
	h.p.m.upstream.WithLabelValues(string(EndpointEvents)).Inc()
	resp, err := h.p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("socketproxy: events: %w", err)
	}
	return resp, nil
}

// pump reads event lines until the stream ends and broadcasts the new ones.
func (h *hub) pump(body io.Reader) {
	h.p.m.eventStreams.Inc()
	defer h.p.m.eventStreams.Dec()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	for sc.Scan() {
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		line := make([]byte, len(raw)+1)
		copy(line, raw)
		line[len(raw)] = '\n'
		if h.seen(line) {
			continue
		}
		h.broadcast(line)
	}
}

// seen reports whether line was already delivered (a replay after since=)
// and otherwise records it as the newest event.
func (h *hub) seen(line []byte) bool {
	var ev struct {
		TimeNano int64 `json:"timeNano"`
	}
	if json.Unmarshal(line, &ev) != nil || ev.TimeNano == 0 {
		return false // not an event we can place in time: pass it on
	}
	if !h.replaying {
		// The first stream carries only new events, in the Engine's order:
		// trust it over its clock.
		h.record(ev.TimeNano, line)
		return false
	}
	switch {
	case ev.TimeNano < h.lastNano:
		return true
	case ev.TimeNano == h.lastNano:
		for _, l := range h.lastLines {
			if bytes.Equal(l, line) {
				return true
			}
		}
	}
	h.record(ev.TimeNano, line)
	return false
}

// record notes line as the newest event delivered.
func (h *hub) record(nano int64, line []byte) {
	if nano != h.lastNano {
		h.lastNano = nano
		h.lastLines = h.lastLines[:0]
	}
	h.lastLines = append(h.lastLines, line)
}

// serveSharedEvents streams the hub's events for path and query to one
// client.
func (p *Proxy) serveSharedEvents(w http.ResponseWriter, r *http.Request, path, query string) {
	h, s := p.subscribe(path, query)
	defer p.unsubscribe(h, s)
	select {
	case <-h.ready:
	case <-r.Context().Done():
		return
	}
	switch {
	case h.err != nil:
		p.upstreamFailed(w, r, h.err)
		return
	case h.failed != nil:
		copyHeader(w.Header(), h.failed.header)
		w.Header().Set("Content-Length", strconv.Itoa(len(h.failed.body)))
		w.WriteHeader(h.failed.status)
		w.Write(h.failed.body)
		return
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(p.opt.EventWriteTimeout))
	copyHeader(w.Header(), h.header)
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	rc.SetWriteDeadline(time.Time{})
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.gone:
			// Dropped: break the response so the client knows it missed
			// events, rather than ending it cleanly.
			panic(http.ErrAbortHandler)
		case line := <-s.ch:
			rc.SetWriteDeadline(time.Now().Add(p.opt.EventWriteTimeout))
			if _, err := w.Write(line); err != nil {
				return
			}
			// Write whatever else is queued before one flush.
			for more := true; more; {
				select {
				case line = <-s.ch:
					if _, err := w.Write(line); err != nil {
						return
					}
				default:
					more = false
				}
			}
			if rc.Flush() != nil {
				return
			}
			rc.SetWriteDeadline(time.Time{})
		}
	}
}
