package l4

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/internal/opt"
)

// inbound is an accepted client connection once its PROXY header, if any,
// has been read.
type inbound struct {
	conn    net.Conn       // the raw accepted connection
	pending []byte         // bytes read past the headers: sent to the backend (or caller) first
	remote  netip.AddrPort // the client: from the PROXY header, else the socket peer
	local   netip.AddrPort // the address the client connected to
}

// accept reads the PROXY header that a trusted peer must send. Headers are
// required rather than optional from trusted peers: with server-speaks-first
// protocols (MySQL, SMTP) waiting to see whether one comes would stall every
// connection, and load balancers configured for the protocol always send one.
func (e *Engine) accept(c net.Conn) (*inbound, bool) {
	in := &inbound{conn: c, remote: addrPort(c.RemoteAddr()), local: addrPort(c.LocalAddr())}
	if !e.trusted(in.remote.Addr()) {
		return in, true
	}
	buf := make([]byte, 0, maxProxyLen)
	if err := c.SetReadDeadline(time.Now().Add(e.opts.PeekTimeout)); err != nil {
		return nil, false
	}
	for {
		h, n, err := parseProxyHeader(buf)
		if err == nil {
			if err := c.SetReadDeadline(time.Time{}); err != nil {
				return nil, false
			}
			if !h.local {
				in.remote, in.local = h.src, h.dst
			}
			in.pending = buf[n:]
			return in, true
		}
		if err == errNeedMore {
			var m int
			m, err = c.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if err == nil || m > 0 {
				continue
			}
			err = fmt.Errorf("%w: reading: %w", ErrProxyHeader, err)
		}
		e.metrics.proxyErrors.Inc()
		e.log.Debug("l4: PROXY header rejected", zap.Stringer("peer", c.RemoteAddr()), zap.Error(err))
		return nil, false
	}
}

func (e *Engine) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range e.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// serve dials the route and splices the connection to it. The caller's
// deferred sessions.done closes whatever is left open.
func (e *Engine) serve(s *session, in *inbound, r *Route) {
	m := e.metrics.route(r)
	m.open.Inc()
	defer m.open.Dec()
	backend, endpoint, release, latency, err := e.dial(in, r, m)
	if err != nil {
		e.log.Debug("l4: no backend", zap.String("route", r.ID), zap.Stringer("client", in.remote), zap.Error(err))
		return
	}
	outcome := balancer.Success
	defer func() { release(latency, outcome) }()
	if !s.attach(backend, endpoint) {
		return // Drain closed the session while we dialed
	}
	// The PROXY header and the replayed bytes go in one write, so the
	// backend sees them in one segment; the splice takes over after it.
	if r.ProxyProtocol == 1 || r.ProxyProtocol == 2 || len(in.pending) > 0 {
		var head []byte
		if r.ProxyProtocol == 1 || r.ProxyProtocol == 2 {
			head = appendProxyHeader(head, r.ProxyProtocol, in.remote, in.local)
		}
		head = append(head, in.pending...)
		if _, err := backend.Write(head); err != nil {
			outcome = balancer.Failure
			return
		}
		m.bytesIn.Add(float64(len(in.pending)))
	}
	idle := r.IdleTimeout
	opt.Positive(&idle, DefaultIdleTimeout)
	up, down := e.splice(in.conn, backend, idle, m)
	m.bytesIn.Add(float64(up))
	m.bytesOut.Add(float64(down))
}

// dial connects to one of the route's endpoints. A failed connect is
// retried on another endpoint (nothing has been sent yet, so this is always
// safe) until every endpoint has been tried once.
func (e *Engine) dial(in *inbound, r *Route, m *routeMetrics) (net.Conn, string, func(time.Duration, balancer.Outcome), time.Duration, error) {
	hint := balancer.Hint{ClientIP: in.remote.Addr().Unmap().String()}
	cands := r.Endpoints
	owned := false // cands aliases r.Endpoints until the first removal
	var lastErr error
	for len(cands) > 0 {
		ep := pick(r.Policy, cands, hint, e.now())
		if ep == nil {
			break
		}
		release := ep.Acquire()
		start := time.Now()
		c, err := e.dialer.Dial("tcp", ep.Addr)
		latency := time.Since(start)
		if err == nil {
			return c, ep.Addr, release, latency, nil
		}
		release(latency, balancer.ConnectFailure)
		m.connectErrors.Inc()
		e.log.Warn("l4: connect failed", zap.String("route", r.ID), zap.String("service", r.Service), zap.String("endpoint", ep.Addr), zap.Error(err))
		lastErr = err
		if !owned {
			cands, owned = append([]*balancer.Endpoint(nil), cands...), true
		}
		for i, c := range cands {
			if c == ep {
				cands = append(cands[:i], cands[i+1:]...)
				break
			}
		}
	}
	m.noEndpoint.Inc()
	if lastErr == nil {
		lastErr = errors.New("no endpoint available")
	}
	return nil, "", nil, 0, fmt.Errorf("l4: route %s: %w", r.ID, lastErr)
}

// pick asks the policy, or takes the first available endpoint when the
// route has none.
func pick(p balancer.Policy, eps []*balancer.Endpoint, h balancer.Hint, now time.Time) *balancer.Endpoint {
	if p != nil {
		return p.Pick(eps, h, now)
	}
	for _, ep := range eps {
		if ep.Available(now) {
			return ep
		}
	}
	return nil
}

// splice copies bytes both ways until both directions have ended and
// returns the byte counts client->backend and backend->client.
//
// io.Copy between two *net.TCPConn reaches TCPConn.ReadFrom, which on
// Linux moves the bytes with splice(2) through a pipe, never through user
// space. Nothing may wrap either conn here; that is why idleness is read
// from the kernel (see idleWatch) instead of counted by a wrapper.
func (e *Engine) splice(client, backend net.Conn, idle time.Duration, m *routeMetrics) (up, down int64) {
	w := newIdleWatch(client, backend, idle, func() {
		m.idleClosed.Inc()
		client.Close()
		backend.Close()
	})
	defer w.stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		up = pipe(backend, w.reader(client))
	}()
	down = pipe(client, w.reader(backend))
	wg.Wait()
	return up, down
}

type closeWriter interface{ CloseWrite() error }

// pipe copies src to dst. On EOF it half-closes dst (the peer sees EOF and
// may go on sending the other way); on an error, or if dst cannot
// half-close, it closes both so that the opposite direction ends too.
func pipe(dst net.Conn, src io.Reader) int64 {
	n, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
			return n
		}
	}
	dst.Close()
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
	return n
}

// idleWatch closes a spliced connection pair after timeout without data in
// either direction. It costs nothing per byte: one timer per connection,
// which on expiry asks how long the connection has really been idle and
// re-arms for the remainder. On Linux the answer comes from the kernel
// (TCP_INFO's last_data_recv/last_data_sent on both sockets), so the copy
// stays a splice. Elsewhere, and for conns that are not TCP, reads are
// counted through a small wrapper instead.
type idleWatch struct {
	timeout time.Duration
	a, b    net.Conn
	expire  func()
	kernel  bool
	start   time.Time
	last    atomic.Int64 // monotonic nanoseconds since start, wrapper mode only

	mu      sync.Mutex // guards timer and stopped against a concurrent check
	timer   *time.Timer
	stopped bool
}

func newIdleWatch(a, b net.Conn, timeout time.Duration, expire func()) *idleWatch {
	w := &idleWatch{timeout: timeout, a: a, b: b, expire: expire, start: time.Now()}
	_, ok1 := kernelIdle(a)
	_, ok2 := kernelIdle(b)
	w.kernel = ok1 && ok2
	w.mu.Lock()
	w.timer = time.AfterFunc(timeout, w.check)
	w.mu.Unlock()
	return w
}

// reader returns what to copy from: the conn itself when the kernel tracks
// idleness, else a wrapper that records each read.
func (w *idleWatch) reader(c net.Conn) io.Reader {
	if w.kernel {
		return c
	}
	return &activityReader{c: c, w: w}
}

func (w *idleWatch) idle() time.Duration {
	since := time.Since(w.start)
	if !w.kernel {
		return since - time.Duration(w.last.Load())
	}
	idle := since
	for _, c := range []net.Conn{w.a, w.b} {
		if d, ok := kernelIdle(c); ok {
			idle = min(idle, d)
		}
	}
	return idle
}

func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if d := w.idle(); d < w.timeout {
		w.timer.Reset(w.timeout - d)
		return
	}
	w.stopped = true
	w.expire()
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// activityReader records the time of each successful read for idleWatch.
type activityReader struct {
	c net.Conn
	w *idleWatch
}

func (r *activityReader) Read(p []byte) (int, error) {
	n, err := r.c.Read(p)
	if n > 0 {
		r.w.last.Store(int64(time.Since(r.w.start)))
	}
	return n, err
}

func (r *activityReader) Close() error { return r.c.Close() }

// session is one client connection, and its backend once dialed, as seen
// by Drain.
type session struct {
	mu       sync.Mutex // guards conns, endpoint and closed
	conns    [2]net.Conn
	endpoint string // the backend's address once dialed
	closed   bool
	detached bool // handed to the caller: not ours to close
}

// attach adds the backend conn, dialed to endpoint; false (and the conn
// closed) if the session was closed meanwhile.
func (s *session) attach(c net.Conn, endpoint string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[1] = c
	s.endpoint = endpoint
	return true
}

// endClean ends a spliced session without a reset: the client gets a FIN
// after the bytes already on their way, has a few seconds to close its side,
// and the backend connection is closed.
func (s *session) endClean() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.detached {
		return
	}
	if cw, ok := s.conns[0].(closeWriter); ok {
		cw.CloseWrite()
	}
	s.conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if s.conns[1] != nil {
		s.conns[1].Close()
	}
}

// detach gives the client conn away (to the caller's Accept).
func (s *session) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detached = true
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for i, c := range s.conns {
		if c != nil && !(i == 0 && s.detached) {
			c.Close()
		}
	}
}

// sessionSet tracks live sessions so that Drain can wait for or close them.
type sessionSet struct {
	mu sync.Mutex // guards m
	m  map[*session]struct{}
	wg sync.WaitGroup
}

func (ss *sessionSet) add(c net.Conn) *session {
	s := &session{conns: [2]net.Conn{c}}
	ss.mu.Lock()
	ss.m[s] = struct{}{}
	ss.wg.Add(1)
	ss.mu.Unlock()
	return s
}

// done closes the session's conns and forgets it.
func (ss *sessionSet) done(s *session) {
	s.close()
	ss.mu.Lock()
	delete(ss.m, s)
	ss.mu.Unlock()
	ss.wg.Done()
}

// endpointsGone ends, cleanly, the sessions spliced to any of addrs.
func (ss *sessionSet) endpointsGone(addrs map[string]bool) int {
	ss.mu.Lock()
	var end []*session
	for s := range ss.m {
		s.mu.Lock()
		if addrs[s.endpoint] {
			end = append(end, s)
		}
		s.mu.Unlock()
	}
	ss.mu.Unlock()
	for _, s := range end {
		s.endClean()
	}
	return len(end)
}

func (ss *sessionSet) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for s := range ss.m {
		s.close()
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	if a != nil {
		ap, _ := netip.ParseAddrPort(a.String())
		return ap
	}
	return netip.AddrPort{}
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
