package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/internal/h1serve"
	"github.com/swarmgate/swarmgate/route"
)

// exchange is the state of one proxied request, for the error handler, the
// access log and the metrics.
type exchange struct {
	start time.Time // the request's, from p.now
	// end is when the upstream response ended (respond), from p.now: the
	// endpoint's release takes it, and finish when direct; zero until then.
	end      time.Time
	target   *target
	endpoint string
	status   int   // status sent to the client
	bytes    int64 // response body bytes sent to the client
	// reqBytes are the request body bytes read from the client (a tunnel's
	// bytes from the client); finish adds those body read.
	reqBytes  int64
	body      *replayGuard
	attempts  int
	reason    string // why the proxy answered by itself, or why the upstream failed
	requestID string
	id        requestIDBuf // requestID's, when the proxy made it
	accept    []string     // the request's Accept field, for the error page
	drained   atomic.Bool  // set when the backend drain deadline ended a stream
	// direct: ServeHTTP forwards the request itself, no policy around the
	// forward, so that start serves forward as its own start and end serves
	// finish (a policy may take its time before and after the forward).
	direct bool
	// The upstream exchange's end and response timeout: stop on the own
	// HTTP/1.1 transport, ctx for the others (nil on the own).
	stop exchangeStop
	ctx  *ctxStop
	// fields are the upstream request's header fields on the own
	// transport, written from the client's without a header map.
	fields upstreamFields
	url    url.URL // the upstream request's
	// out is the upstream request on the own transport, which takes the
	// client's context: a copy of the client's request kept here costs no
	// allocation of its own (see outRequest). resp is its response.
	out  http.Request
	resp h1Response
}

// ctxStop ends an upstream exchange through its request's context, for
// the transports that take their end from it: canceled at the response
// timeout by a timer, which is stopped while a body is sent.
type ctxStop struct {
	cancel   context.CancelFunc
	timer    *time.Timer
	timedOut atomic.Bool
}

// endUpstream ends the upstream exchange (the backend drain deadline).
func (x *exchange) endUpstream() {
	if x.ctx != nil {
		x.ctx.cancel()
		return
	}
	x.stop.end()
}

// timedOut reports whether the response timeout ended the exchange.
func (x *exchange) timedOut() bool {
	if x.ctx != nil {
		return x.ctx.timedOut.Load()
	}
	return x.stop.timedOut.Load()
}

// stopTimeout stops the response timeout: the response came, or a body is
// about to be sent (the timeout then runs from its end).
func (x *exchange) stopTimeout() {
	if x.ctx != nil {
		x.ctx.timer.Stop()
	}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchange{start: p.now()}
	x.requestID = x.id.requestID(r.Header)
	x.accept = r.Header["Accept"]
	defer p.finish(r, &x)
	// The response shares the request's slice of the id (requestID leaves
	// it first there), which nothing writes into: no allocation.
	w.Header()["X-Request-Id"] = r.Header["X-Request-Id"][:1:1]
	if r.Method == http.MethodConnect {
		p.fail(w, &x, http.StatusMethodNotAllowed, "CONNECT is not proxied")
		return
	}
	t := p.table.Load()
	reqPath := cleanPath(r.URL.Path)
	g, _, ok := t.http.Lookup(r.Host, reqPath)
	if !ok {
		p.fail(w, &x, http.StatusNotFound, "no route")
		return
	}
	tg := g.pick(r, x.start)
	if tg == nil {
		x.target = g.targets[0]
		p.fail(w, &x, http.StatusServiceUnavailable, errNoEndpoint.Error())
		return
	}
	x.target = tg
	if r.TLS == nil && tg.route.TLSRedirect {
		p.redirectHTTPS(w, r, &x)
		return
	}
	if r.TLS != nil && p.misdirected(r) {
		p.fail(w, &x, http.StatusMisdirectedRequest, "host "+r.Host+" is not served under the certificate of "+r.TLS.ServerName)
		return
	}
	if to, code := tg.redirect(r, reqPath); to != "" {
		x.status = code
		http.Redirect(w, r, to, code)
		return
	}
	if tg.guard != nil {
		p.serveGuarded(w, r, tg, reqPath, &x)
		return
	}
	x.direct = true
	p.forward(w, r, tg, reqPath, &x)
}

// redirectHTTPS sends a plain-HTTP client to the same URL over HTTPS: 301
// for GET and HEAD, 308 (method and body kept) for the rest.
func (p *Proxy) redirectHTTPS(w http.ResponseWriter, r *http.Request, x *exchange) {
	code := http.StatusPermanentRedirect
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	x.status, x.reason = code, "https redirect"
	http.Redirect(w, r, "https://"+stripPort(r.Host)+p.https+r.URL.RequestURI(), code)
}

// misdirected reports a request whose Host is served under other TLS
// settings than the name the client's TLS handshake asked for (RFC 9110
// section 15.5.20): a connection set up for one certificate must not carry
// requests for hosts of another (domain fronting).
func (p *Proxy) misdirected(r *http.Request) bool {
	if p.tlsName == nil {
		return false
	}
	sni := r.TLS.ServerName
	host := stripPort(r.Host)
	if sni == "" || strings.EqualFold(sni, host) {
		return false
	}
	return p.tlsName(host) != p.tlsName(sni)
}

// fail answers the client with a plain-text error, or the route's error
// page. Every answer the proxy gives by itself goes through here.
func (p *Proxy) fail(w http.ResponseWriter, x *exchange, code int, reason string) {
	x.status, x.reason = code, reason
	if servePage(w, x, code) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	n, _ := io.WriteString(w, http.StatusText(code)+"\n")
	x.bytes = int64(n)
}

// forward sends the request to the target's endpoints, retrying what is safe
// to retry, and streams the response back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, tg *target, reqPath string, x *exchange) {
	timeout := tg.route.Timeout
	if timeout <= 0 {
		timeout = route.DefaultTimeout
	}
	// The timeout is for the response: it runs from the end of the request
	// body (a 100 MB upload may take longer than the timeout to send).
	// The own transport takes it as a deadline on its connection and is
	// ended through x.stop, which the client's leaving ends; the others
	// take both from a context of their own.
	ctx := r.Context()
	start := x.start // read before the route's lookup, microseconds before forward
	if !x.direct || !balancer.SystemClock(start) {
		start = time.Now()
	}
	_, own := tg.transport.(*h1Transport)
	own = own && upgradeType(r.Header) == ""
	if own {
		if h1serve.WatchClient(ctx, &x.stop) {
			defer h1serve.UnwatchClient(ctx)
		} else {
			defer context.AfterFunc(ctx, x.stop.end)()
		}
	} else {
		cs := &ctxStop{}
		ctx, cs.cancel = context.WithCancel(ctx)
		defer cs.cancel()
		cs.timer = time.AfterFunc(timeout, func() { cs.timedOut.Store(true); cs.cancel() })
		defer cs.timer.Stop()
		x.ctx = cs
	}

	if !tg.route.StreamBody { // a streaming route's bodies are not read ahead
		if err := bufferBody(r, p.requestBuffer); err != nil {
			p.failClientBody(w, x, err)
			return
		}
	}
	var fields *upstreamFields
	if own {
		fields = &x.fields
	}
	out := p.outRequest(ctx, r, tg, reqPath, x, fields)
	var body *replayGuard
	if out.Body != nil {
		x.stopTimeout()
		body = &replayGuard{rc: r.Body}
		if x.ctx != nil {
			body.sent = func() { x.ctx.timer.Reset(timeout) }
		} else {
			body.sent = func() {}
		}
		out.Body = body
		x.body = body
	}
	if own {
		switch {
		case body != nil && time.Since(start) >= timeout:
			// Reading the body ahead took the whole timeout: as the timer
			// of the other transports would have, it ended the exchange.
			x.stop.timedOut.Store(true)
			x.stop.end()
		case body != nil:
			x.stop.afterBody = timeout
		default:
			x.stop.deadline = start.Add(timeout)
		}
	}
	tg.budget.deposit()
	hint := balancer.Hint{ClientIP: clientIP(r.RemoteAddr)}
	var tried []*balancer.Endpoint
	fresh := false // after a stale pooled connection, retries dial new ones
	// now is the pick's time: the request's start (unless a policy or a
	// body read ahead took time since), then the reading of the last
	// attempt's failure.
	now := x.start
	if !x.direct || body != nil {
		now = p.now()
	}
	for {
		if r.Context().Err() != nil {
			// The client reset the stream (or left) before the request
			// went upstream: nothing is dialed for it.
			x.status, x.reason = 499, "client closed request"
			return
		}
		ep := p.pickEndpoint(r, tg, hint, tried, now)
		if ep == nil {
			if x.attempts == 0 {
				p.fail(w, x, http.StatusServiceUnavailable, errNoEndpoint.Error())
			} else {
				p.fail(w, x, http.StatusBadGateway, x.reason)
			}
			return
		}
		x.attempts++
		x.endpoint = ep.Addr
		out.URL.Host = ep.Addr
		release := ep.AcquireTimed()
		sent := p.now()
		if own && balancer.SystemClock(sent) {
			x.stop.clock = sent // takeIdle's
		}
		resp, err := roundTrip(tg.transport, out, fresh, x, fields)
		if err == nil {
			x.stopTimeout()
			p.respond(w, r, tg, ep, resp, x, func(o balancer.Outcome) {
				if x.end.IsZero() { // a tunnel: no body to close (see closeBody)
					x.end = p.now()
				}
				release(x.end, x.end.Sub(sent), o)
			})
			return
		}
		switch {
		case x.timedOut():
			now = p.now()
			release(now, now.Sub(sent), balancer.Failure)
			p.metrics.upstreamError(tg, reasonTimeout)
			p.fail(w, x, http.StatusGatewayTimeout, "upstream timed out after "+timeout.String())
			return
		case r.Context().Err() != nil:
			release(sent, 0, balancer.Abandoned)
			x.status, x.reason = 499, "client closed request"
			return
		case body.clientError() != nil:
			// The client's body broke the exchange: answer the client, and
			// count nothing against the endpoint (its connection is closed).
			release(sent, 0, balancer.Abandoned)
			p.failClientBody(w, x, body.clientError())
			return
		case isConnectError(err):
			// Nothing reached the endpoint: any request may go elsewhere.
			now = p.now()
			release(now, now.Sub(sent), balancer.ConnectFailure)
			p.metrics.upstreamError(tg, reasonConnect)
			x.reason = err.Error()
		case errors.Is(err, errStaleConn):
			// A pooled connection's path to the endpoint is broken (its data
			// went unacknowledged, its address unreachable): the endpoint
			// leaves rotation as one that failed to connect. The request may
			// have reached it, so only an idempotent one goes elsewhere, on a
			// new connection whose connect proves the path.
			now = p.now()
			release(now, now.Sub(sent), balancer.ConnectFailure)
			p.metrics.upstreamError(tg, reasonConnect)
			x.reason = err.Error()
			fresh = true
			if body != nil || !idempotent(r.Method) {
				p.fail(w, x, http.StatusBadGateway, x.reason)
				return
			}
		default:
			now = p.now()
			release(now, now.Sub(sent), balancer.Failure)
			p.metrics.upstreamError(tg, reasonProtocol)
			x.reason = err.Error()
			if body != nil || !idempotent(r.Method) {
				p.fail(w, x, http.StatusBadGateway, x.reason)
				return
			}
		}
		if body != nil && body.read.Load() {
			p.fail(w, x, http.StatusBadGateway, x.reason)
			return
		}
		if x.attempts >= p.maxTry {
			p.fail(w, x, http.StatusBadGateway, x.reason)
			return
		}
		if !tg.budget.withdraw(now) {
			p.metrics.retried(tg, false)
			p.fail(w, x, http.StatusBadGateway, x.reason+" (retry budget exhausted)")
			return
		}
		p.metrics.retried(tg, true)
		tried = append(tried, ep)
		p.log.Debug("retrying on another endpoint",
			zap.String("route", tg.id), zap.String("endpoint", ep.Addr), zap.String("reason", x.reason))
	}
}

// pickEndpoint honours a sticky cookie on the first attempt, then asks the
// route's policy, leaving out endpoints that already failed this request.
// now is a recent reading of p.now: the request's start, or the time its
// last attempt failed.
func (p *Proxy) pickEndpoint(r *http.Request, tg *target, h balancer.Hint, tried []*balancer.Endpoint, now time.Time) *balancer.Endpoint {
	eps := tg.endpoints
	if len(tried) > 0 {
		eps = make([]*balancer.Endpoint, 0, len(tg.endpoints))
		for _, e := range tg.endpoints {
			if !containsEndpoint(tried, e) {
				eps = append(eps, e)
			}
		}
	} else if tg.sticky != "" {
		if c, err := r.Cookie(tg.sticky); err == nil {
			if e := balancer.FindSticky(eps, c.Value, now); e != nil {
				return e
			}
		}
	}
	if e := tg.policy.Pick(eps, h, now); e != nil {
		return e
	}
	if len(tried) == 0 {
		return balancer.LeastEjected(eps)
	}
	return nil
}

func containsEndpoint(s []*balancer.Endpoint, e *balancer.Endpoint) bool {
	for _, x := range s {
		if x == e {
			return true
		}
	}
	return false
}

// outRequest builds the upstream request: same method, body and headers less
// the hop-by-hop ones, plus the X-Forwarded-* set. With fields (the own
// transport), the header is not built: fields are set to be written from
// the client's, and out.Header is nil.
func (p *Proxy) outRequest(ctx context.Context, r *http.Request, tg *target, reqPath string, x *exchange, fields *upstreamFields) *http.Request {
	var out *http.Request
	if fields != nil && ctx == r.Context() {
		// What r.WithContext(ctx) would return, in the exchange: the copy
		// lives as long as the exchange, and is never reused.
		x.out = *r
		out = &x.out
	} else {
		out = r.WithContext(ctx)
	}
	prefix := ""
	if tg.stripLen > 0 {
		prefix = reqPath[:tg.stripLen]
	}
	if fields != nil {
		out.Header = nil
		fields.set(r, p.trustedPeer(r.RemoteAddr), prefix)
	} else {
		extra := forwardedFields
		if tg.stripLen > 0 {
			extra++ // X-Forwarded-Prefix
		}
		if _, ok := r.Header["User-Agent"]; !ok {
			extra++ // kept absent by a nil value
		}
		out.Header = outHeader(r.Header, extra)
	}
	// The URL is the exchange's, which lives as long as out.
	u := &x.url
	*u = url.URL{Scheme: tg.scheme(), Path: reqPath, RawQuery: r.URL.RawQuery}
	if reqPath == r.URL.Path {
		u.RawPath = r.URL.RawPath
	}
	if tg.stripLen > 0 {
		u.Path = stripPrefix(u.Path, tg.stripLen)
		if u.RawPath != "" {
			if strings.HasPrefix(u.RawPath, reqPath[:tg.stripLen]) {
				u.RawPath = stripPrefix(u.RawPath, tg.stripLen)
			} else {
				u.RawPath = ""
			}
		}
	}
	out.URL = u
	out.RequestURI = ""
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil // a zero-length body is no body: safe to retry
	}
	if !tg.route.H2C {
		// Request trailers reach only gRPC (h2c) routes: elsewhere a declared
		// trailer field would reach the backend after the checks on headers.
		out.Trailer = nil
	}
	if fields != nil {
		return out // no upgrade: it goes to another transport
	}
	// Hop-by-hop fields, the h2c upgrade's HTTP2-Settings and fields with
	// an underscore are not copied (outHeader).
	if upgrade := upgradeType(r.Header); upgrade != "" {
		out.Header["Connection"] = []string{"Upgrade"}
		out.Header["Upgrade"] = []string{upgrade}
	}
	setForwarded(out.Header, r, p.trustedPeer(r.RemoteAddr), prefix)
	return out
}

// forwardedFields is how many fields setForwarded adds to every request:
// X-Forwarded-For, -Proto, -Host, -Port and X-Real-IP.
const forwardedFields = 5

func stripPrefix(p string, n int) string {
	if n >= len(p) {
		return "/"
	}
	return p[n:]
}

// respond streams an upstream response to the client.
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, tg *target, ep *balancer.Endpoint,
	resp *http.Response, x *exchange, done func(balancer.Outcome)) {
	outcome := balancer.Success
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		outcome = balancer.Failure
	}
	defer func() { done(outcome) }()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.tunnel(w, r, resp, x)
		return
	}
	defer p.closeBody(resp.Body, x)
	h := w.Header()
	removeHopByHop(resp.Header)
	for k, vv := range resp.Header {
		h[k] = vv
	}
	if tg.sticky != "" {
		setStickyCookie(h, r, tg.sticky, balancer.StickyValue(ep))
	}
	if r.TLS != nil && tg.route.HSTS != "" {
		h.Set("Strict-Transport-Security", tg.route.HSTS)
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Set("Trailer", strings.Join(keys, ", "))
	}
	x.status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)
	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	if flush {
		// A stream may outlive its endpoint's place in the table: at the
		// backend drain deadline it is ended as if the upstream had finished.
		defer p.hold(&longLived{addr: ep.Addr, stop: func() { x.drained.Store(true); x.endUpstream() }})()
	}
	n, readErr, writeErr := copyBody(w, resp.Body, flush)
	x.bytes = n
	if readErr != nil && x.drained.Load() {
		readErr, x.reason = nil, "ended at the backend drain deadline"
	}
	if readErr != nil || writeErr != nil {
		if readErr != nil {
			x.reason = "reading upstream response: " + readErr.Error()
			outcome = balancer.Failure
		} else {
			x.reason = "writing to client: " + writeErr.Error()
		}
		// The status line is gone: abort, so the client sees a truncated
		// response instead of a complete-looking one.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

// closeBody closes an upstream response's body at its end, read then (x.end):
// the one reading serves the endpoint's release, the access log's duration
// and the own transport's idle time of the connection it pools.
func (p *Proxy) closeBody(body io.ReadCloser, x *exchange) {
	x.end = p.now()
	if balancer.SystemClock(x.end) {
		x.stop.clock = x.end // put's
	}
	body.Close()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies src to w with a pooled buffer, flushing after every write
// when asked (server-sent events, chunked streams). It tells a failure to read
// the upstream from a failure to write to the client.
func copyBody(w http.ResponseWriter, src io.Reader, flush bool) (n int64, readErr, writeErr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	fl, _ := w.(http.Flusher)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, nil, werr
			}
			if flush && fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return n, nil, nil
		}
		if rerr != nil {
			return n, rerr, nil
		}
	}
}

// replayGuard wraps a request body so that a failed attempt can tell whether
// any of it was consumed, and so that the transport's Close on error does not
// close the client's body before a retry.
type replayGuard struct {
	rc   io.ReadCloser
	read atomic.Bool
	n    atomic.Int64 // bytes read, for the request bytes metric
	sent func()       // called once the body has been read to its end
	once sync.Once
	// bad is set when reading the client's body failed: a malformed chunk,
	// a body shorter than its Content-Length, a limit crossed. The upstream
	// exchange then fails because of the client, not the endpoint.
	bad atomic.Pointer[error]
}

func (b *replayGuard) Read(p []byte) (int, error) {
	b.read.Store(true)
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	switch {
	case err == io.EOF:
		b.once.Do(b.sent)
	case err != nil:
		b.bad.CompareAndSwap(nil, &err)
	}
	return n, err
}

// clientError returns the error reading the client's body, or nil.
func (b *replayGuard) clientError() error {
	if b == nil {
		return nil
	}
	if e := b.bad.Load(); e != nil {
		return *e
	}
	return nil
}

// Close is a no-op: the server closes the client's body when the handler returns.
func (b *replayGuard) Close() error { return nil }

// roundTrip sends out through rt. With fields (rt is the own transport and
// out no upgrade: see forward), it goes on a new connection when fresh,
// x.stop ends the exchange and bounds its response instead of out's
// context, fields are written instead of out.Header, and the response is
// x.resp. The other transports (and upgrades, which the own transport
// hands to net/http's) pool as they do.
func roundTrip(rt http.RoundTripper, out *http.Request, fresh bool, x *exchange, fields *upstreamFields) (*http.Response, error) {
	if h1, ok := rt.(*h1Transport); ok && fields != nil {
		return h1.roundTrip(out, fresh, &x.stop, fields, &x.resp)
	}
	return rt.RoundTrip(out)
}

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// idempotent reports the methods RFC 9110 section 9.2.2 calls idempotent.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	return strings.HasPrefix(ct, "text/event-stream")
}

// cleanPath returns p with "//", "." and ".." segments resolved, so that the
// path that is routed is the path that is forwarded. Clean paths (nearly all)
// are returned as they are, without allocating.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	if !needsClean(p) {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func needsClean(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' || i+1 >= len(p) {
			continue
		}
		switch next := p[i+1:]; {
		case next[0] == '/':
			return true
		case next == "." || next == "..", strings.HasPrefix(next, "./"), strings.HasPrefix(next, "../"):
			return true
		}
	}
	return false
}

func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// finish records the exchange: metrics and one access log entry.
func (p *Proxy) finish(r *http.Request, x *exchange) {
	end := x.end
	if !x.direct || end.IsZero() {
		end = p.now()
	}
	elapsed := end.Sub(x.start)
	route, s := "", p.metrics.none
	if x.target != nil {
		route, s = x.target.id, p.metrics.series(x.target)
	}
	if x.body != nil {
		x.reqBytes += x.body.n.Load()
	}
	s.answer(x.status, elapsed, x.reqBytes, x.bytes)
	if x.status >= 500 && x.status != 499 {
		p.log.Warn("upstream failure",
			zap.String("route", route), zap.String("endpoint", x.endpoint), zap.Int("status", x.status),
			zap.String("reason", x.reason), zap.Int("attempts", x.attempts), zap.String("request_id", x.requestID))
	}
	if p.access == nil || !p.resetLogged(r, x) {
		return
	}
	p.access.Info("request",
		zap.String("request_id", x.requestID),
		zap.String("client", r.RemoteAddr),
		zap.String("method", r.Method),
		zap.String("host", r.Host),
		zap.String("uri", r.RequestURI),
		zap.String("proto", r.Proto),
		zap.Int("status", x.status),
		zap.Int64("bytes", x.bytes),
		zap.Duration("duration", elapsed),
		zap.String("route", route),
		zap.String("endpoint", x.endpoint),
		zap.Int("attempts", x.attempts),
		zap.String("reason", x.reason),
	)
}

// resetLogged accounts for an HTTP/2 stream the client reset (see
// resetBudget) and reports whether its access-log line is written.
func (p *Proxy) resetLogged(r *http.Request, x *exchange) bool {
	if x.status != 499 || r.ProtoMajor != 2 {
		return true
	}
	g := guardOf(r.Context())
	if g == nil {
		return true
	}
	p.metrics.clientResets.Inc()
	logIt, closed := g.reset(p.now(), p.metrics.resetCloses.Inc)
	if closed {
		p.log.Warn("client connection closed: it reset too many streams",
			zap.String("client", r.RemoteAddr), zap.Int("budget", resetBudget), zap.Duration("window", resetWindow))
	}
	return logIt
}

// failClientBody answers a request whose body could not be read: 413 for a
// body over the limit, else 400.
func (p *Proxy) failClientBody(w http.ResponseWriter, x *exchange, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		p.fail(w, x, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
		return
	}
	if errors.Is(err, errBodyTimeout) {
		// Closed after the answer: net/http would otherwise wait for the
		// rest of the body before it sends one.
		w.Header().Set("Connection", "close")
		p.fail(w, x, http.StatusRequestTimeout, err.Error())
		return
	}
	p.fail(w, x, http.StatusBadRequest, "malformed request body: "+err.Error())
}
