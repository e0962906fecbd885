package l4

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// TLSListener wraps the :443 listener. Each accepted connection's
// ClientHello is peeked (at most MaxHelloBytes, within PeekTimeout, after a
// PROXY header from a trusted peer). A server name that a passthrough route
// owns is spliced to that route's endpoints untouched, the peeked bytes
// first. Everything else is returned from Accept with the peeked bytes
// replayed, for the caller's tls.Server to terminate:
//
//   - no SNI, or a name no passthrough route owns;
//   - bytes that are not TLS (plain HTTP on :443: Go's tls.Server answers it
//     with a 400) or a malformed ClientHello (the TLS stack sends the alert).
//
// Connections that time out, end inside the ClientHello or exceed
// MaxHelloBytes are closed: their route cannot be known, and handing them
// to local termination could answer a passthrough name with the edge's own
// certificate.
//
// The peek runs in a goroutine per connection, so a slow client never holds
// up Accept. Closing the returned listener closes ln.
func (e *Engine) TLSListener(ln net.Listener) net.Listener { return e.wrap(ln, true) }

// ProxyListener wraps a plain listener (the HTTP :80 one) so that
// connections from TrustedProxies have their PROXY header read and their
// RemoteAddr set from it, like the engine's own listeners. Other connections
// are returned as they are.
func (e *Engine) ProxyListener(ln net.Listener) net.Listener { return e.wrap(ln, false) }

// wrapListener is the listener returned by TLSListener and ProxyListener.
//
// Closing it stops accepting at once, but the connections already accepted
// (a ClientHello or PROXY header still being read) are still delivered to
// Accept, which returns an error only once none is left: a listener handed
// over to a successor, or closed for a graceful shutdown, drops nothing that
// the kernel had already given it.
type wrapListener struct {
	inner   net.Listener
	peekTLS bool
	conns   chan net.Conn // connections for the caller; unbuffered
	done    chan struct{} // closed by Close or when inner fails for good
	abandon chan struct{} // closed once Accept takes no more connections
	looped  chan struct{} // closed when the accept loop has returned
	pending atomic.Int64  // accepted connections not yet delivered, spliced or dropped

	once        sync.Once
	abandonOnce sync.Once
	mu          sync.Mutex // guards err
	err         error      // why Accept returns an error
}

var _ net.Listener = (*wrapListener)(nil)

func (e *Engine) wrap(ln net.Listener, peekTLS bool) *wrapListener {
	w := &wrapListener{inner: ln, peekTLS: peekTLS, conns: make(chan net.Conn), done: make(chan struct{}), abandon: make(chan struct{}), looped: make(chan struct{})}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		w.shut(net.ErrClosed)
		w.giveUp()
		close(w.looped)
		return w
	}
	e.wrapped = append(e.wrapped, w)
	e.loops.Add(1)
	go func() {
		defer e.loops.Done()
		acceptLoop(ln, e.log, func(c net.Conn) {
			s := e.sessions.add(c)
			w.pending.Add(1)
			go func() {
				defer e.sessions.done(s)
				defer w.pending.Add(-1)
				e.handleWrapped(w, s, c)
			}()
		})
		w.shut(net.ErrClosed)
		close(w.looped)
	}()
	return w
}

func (e *Engine) handleWrapped(w *wrapListener, s *session, c net.Conn) {
	in, ok := e.accept(c)
	if !ok {
		return
	}
	if !w.peekTLS {
		w.handoff(s, in)
		return
	}
	buf := make([]byte, len(in.pending), max(e.opts.MaxHelloBytes, len(in.pending)))
	copy(buf, in.pending)
	buf, sni, err := peekHello(c, buf, e.opts.PeekTimeout)
	in.pending = buf
	if err != nil {
		reason := peekReason(err)
		e.metrics.peekFailures.WithLabelValues(reason).Inc()
		e.log.Debug("l4: ClientHello peek failed", zap.Stringer("client", in.remote), zap.String("reason", reason), zap.Error(err))
		if reason == peekNotTLS || reason == peekMalformed {
			w.handoff(s, in)
		}
		return
	}
	if r := e.table.Load().lookupSNI(sni); r != nil {
		e.serve(s, in, r)
		return
	}
	w.handoff(s, in)
}

func peekReason(err error) string {
	switch {
	case errors.Is(err, ErrNotTLS):
		return peekNotTLS
	case errors.Is(err, ErrHelloMalformed):
		return peekMalformed
	case errors.Is(err, ErrHelloTooLarge):
		return peekTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return peekTimeout
	}
	return peekTruncated
}

// handoff passes the connection to the caller's Accept, or leaves it to be
// closed if the listener closes first.
func (w *wrapListener) handoff(s *session, in *inbound) {
	var c net.Conn = in.conn
	if len(in.pending) > 0 || in.remote != addrPort(in.conn.RemoteAddr()) || in.local != addrPort(in.conn.LocalAddr()) {
		c = &replayConn{
			Conn:    in.conn,
			pending: in.pending,
			remote:  net.TCPAddrFromAddrPort(in.remote),
			local:   net.TCPAddrFromAddrPort(in.local),
		}
	}
	select {
	case w.conns <- c:
		s.detach()
	case <-w.abandon:
	}
}

func (w *wrapListener) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.done:
	}
	// Closed: deliver what was accepted before, then fail. The accept loop
	// counts a connection only after inner.Accept returned it, so pending is
	// final only once the loop has returned.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c := <-w.conns:
			return c, nil
		case <-w.looped:
		case <-tick.C:
			continue
		}
		break
	}
	for w.pending.Load() > 0 {
		select {
		case c := <-w.conns:
			return c, nil
		case <-tick.C:
		}
	}
	w.giveUp()
	w.mu.Lock()
	defer w.mu.Unlock()
	return nil, w.err
}

// Pending reports the connections accepted but not yet delivered: a server
// shutting down waits for them before it stops reading requests.
func (w *wrapListener) Pending() int { return int(w.pending.Load()) }

// giveUp makes handoffs still in progress drop their connection.
func (w *wrapListener) giveUp() { w.abandonOnce.Do(func() { close(w.abandon) }) }

func (w *wrapListener) Close() error {
	w.shut(net.ErrClosed)
	// If nobody calls Accept again, handoffs must not wait forever.
	time.AfterFunc(10*time.Second, w.giveUp)
	err := w.inner.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (w *wrapListener) Addr() net.Addr { return w.inner.Addr() }

func (w *wrapListener) shut(err error) {
	w.once.Do(func() {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		close(w.done)
	})
}

// replayConn is a connection handed to the caller: it returns the bytes
// already peeked before reading on, and reports the client's address from
// the PROXY header.
type replayConn struct {
	net.Conn
	pending       []byte
	remote, local net.Addr
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *replayConn) RemoteAddr() net.Addr { return c.remote }
func (c *replayConn) LocalAddr() net.Addr  { return c.local }

// CloseWrite half-closes the underlying connection when it can (net/http
// uses it for a graceful close).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
