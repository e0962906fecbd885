package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/internal/h1serve"
	"github.com/swarmgate/swarmgate/internal/h2serve"
	"github.com/swarmgate/swarmgate/internal/opt"
	"go.uber.org/zap"
)

// ServerOptions bound what one client may hold on a listener.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers. If zero, 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds keep-alive waits between requests. If zero, 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block; larger gets 431. If zero, 64 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body; larger gets 413. If zero, 1 GiB; negative is unlimited.
	MaxBodyBytes int64
	// BodyTimeout bounds how long a client may send nothing in the middle
	// of a request body; then it gets 408. If zero, DefaultBodyTimeout.
	BodyTimeout time.Duration
	// StdlibHTTP1 serves HTTP/1.x with net/http's server, as before the
	// edge had its own connection loop (internal/h1serve): a fallback. If
	// false, the own loop serves HTTP/1.x and net/http serves HTTP/2 only.
	StdlibHTTP1 bool
	// StdlibHTTP2 serves HTTP/2 with net/http's server instead of the
	// edge's own (internal/h2serve): a fallback. StdlibHTTP1 implies it.
	StdlibHTTP2 bool
}

// Server is an http.Server for one kind of listener, with a shutdown that
// loses no request (see Shutdown). Unless ServerOptions.StdlibHTTP1, Serve
// accepts the connections itself: HTTP/1.x is served by the edge's own
// loop (h1), and the connections that speak HTTP/2 (ALPN "h2" after a TLS
// handshake, or the cleartext preface) by the edge's own HTTP/2 server
// (h2own), or with StdlibHTTP2 are handed to the http.Server through an
// in-memory listener (h2).
type Server struct {
	*http.Server
	p *Proxy

	h1     *h1serve.Server // nil with StdlibHTTP1
	h2own  *h2serve.Server // nil with StdlibHTTP1 or StdlibHTTP2
	h2     *connListener   // to net/http's HTTP/2, with StdlibHTTP2
	h1once sync.Once
	// handshaking counts the TLS connections accepted that have no engine
	// yet; Shutdown waits for them as for fresh ones.
	handshaking atomic.Int64

	// fresh holds the connections accepted whose first request is not read
	// yet; freshN counts them.
	fresh  sync.Map
	freshN atomic.Int64
	// guards holds the reset accounting (connGuard) of each open
	// connection served by net/http (with the own loop: HTTP/2 only).
	guards sync.Map
	// serving counts Serve calls still accepting: a closed listener may
	// still deliver connections it had accepted (see l4's wrapped listeners).
	serving atomic.Int64
	// mu guards listeners and closing.
	mu        sync.Mutex
	listeners []net.Listener
	closing   bool
}

// NewServer returns a Server for the listener named name (it labels the
// connection metrics) that serves p over HTTP/1.1 and cleartext HTTP/2 with
// prior knowledge. Read and write timeouts are deliberately absent: bodies may
// stream for hours (uploads, server-sent events); headers and idle waits are
// bounded instead.
func (p *Proxy) NewServer(name string, o ServerOptions) *Server {
	o.defaults()
	open := p.metrics.connections.WithLabelValues(name)
	h := closeAfterTransferEncoding(p.limited(o))
	srv := &Server{p: p}
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          log.New(zapWriter{p.log.With(zap.String("listener", name))}, "", 0),
		// Every connection net/http serves gets its X-Forwarded-Port,
		// formatted once, and a reset guard, registered for closedGuard.
		// Unless StdlibHTTP1 these are the HTTP/2 connections only: the own
		// loop's (HTTP/1) get the port alone (see startH1).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			ctx = withConnGuard(ctx, c)
			srv.guards.Store(c, guardOf(ctx))
			return ctx
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				open.Inc()
				srv.fresh.Store(c, struct{}{})
				srv.freshN.Add(1)
			case http.StateActive:
				srv.settled(c)
			case http.StateHijacked, http.StateClosed:
				open.Dec()
				srv.settled(c)
				srv.closedGuard(c)
			}
		},
		Protocols: new(http.Protocols),
		HTTP2: &http.HTTP2Config{
			// The protocol's initial frame size, as NGINX and HAProxy keep
			// it: a peer that sends a larger frame before it has read our
			// SETTINGS is answered FRAME_SIZE_ERROR (RFC 9113 section 4.2),
			// and no connection can make the edge buffer a 1 MiB frame.
			MaxReadFrameSize: 16 << 10,
		},
	}
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetUnencryptedHTTP2(true)
	s.Protocols.SetHTTP2(true)
	srv.Server = s
	if !o.StdlibHTTP1 {
		srv.h1 = &h1serve.Server{}
		srv.h2 = newConnListener()
		if !o.StdlibHTTP2 {
			srv.h2own = &h2serve.Server{}
		}
	}
	return srv
}

// startH1 configures the own loops from the http.Server, once its owner is
// done changing it (the edge wraps Handler and ConnState after NewServer),
// and starts net/http's server on the in-memory listener for HTTP/2 when
// the own HTTP/2 server is off.
func (s *Server) startH1() {
	s.h1once.Do(func() {
		h2c := s.h2.deliver
		if s.h2own != nil {
			*s.h2own = h2serve.Server{
				Handler:           s.Server.Handler,
				ReadHeaderTimeout: s.Server.ReadHeaderTimeout,
				IdleTimeout:       s.Server.IdleTimeout,
				MaxHeaderBytes:    s.Server.MaxHeaderBytes,
				ConnContext:       s.Server.ConnContext, // the guard of resets and its entry in guards
				ConnState:         s.Server.ConnState,
				HTTPServer:        s.Server,
				ErrorLog:          s.Server.ErrorLog,
			}
			h2c = s.h2own.ServeConn
		}
		*s.h1 = h1serve.Server{
			Handler:           s.Server.Handler,
			ReadHeaderTimeout: s.Server.ReadHeaderTimeout,
			IdleTimeout:       s.Server.IdleTimeout,
			MaxHeaderBytes:    s.Server.MaxHeaderBytes,
			ConnContext:       withLocalPort, // no guard, no guards entry: HTTP/1 resets no stream
			ConnState:         s.Server.ConnState,
			H2C:               h2c,
			HTTPServer:        s.Server,
			ErrorLog:          s.Server.ErrorLog,
		}
		if s.h2own == nil {
			go s.Server.Serve(s.h2)
		}
	})
}

// defaults fills in the zero values of o.
func (o *ServerOptions) defaults() {
	opt.Positive(&o.ReadHeaderTimeout, 10*time.Second)
	opt.Positive(&o.IdleTimeout, 120*time.Second)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	opt.Positive(&o.BodyTimeout, DefaultBodyTimeout)
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 30
	}
}

// limited is p behind the body limits of o, as every listener serves it.
func (p *Proxy) limited(o ServerOptions) http.Handler {
	var h http.Handler = p
	if o.MaxBodyBytes > 0 {
		h = limitBody(p, o.MaxBodyBytes)
	}
	return limitBodyIdle(h, o.BodyTimeout, p.now)
}

// closedGuard drops a closed connection's reset accounting, and logs the
// reset streams that were not access-logged one by one.
func (s *Server) closedGuard(c net.Conn) {
	v, ok := s.guards.LoadAndDelete(c)
	if !ok {
		return
	}
	if n := v.(*connGuard).unloggedResets(); n > 0 && s.p.access != nil {
		s.p.access.Info("reset streams not logged one by one",
			zap.String("client", c.RemoteAddr().String()), zap.Int("streams", n))
	}
}

// closeAfterTransferEncoding closes an HTTP/1.x connection after a request
// that came with a Transfer-Encoding. A request with both Transfer-Encoding
// and Content-Length is the raw material of request smuggling: RFC 9112
// section 6.1 lets a server read it by Transfer-Encoding only if it then
// closes the connection, and net/http reads it so but, having dropped the
// Content-Length, cannot tell it from a plain chunked request. So every
// such connection is closed: chunked uploads are rare and costly anyway.
// HTTP/1.0 has no Transfer-Encoding and net/http drops the header, so
// every HTTP/1.0 request with a body closes its connection too.
func closeAfterTransferEncoding(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && (len(r.TransferEncoding) > 0 || r.ProtoMinor == 0 && r.ContentLength != 0) {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// limitBody answers 413 for a declared body over max and cuts a streamed one
// off at max.
func limitBody(p *Proxy, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			p.refuseBody(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		p.ServeHTTP(w, r)
	})
}

// refuseBody answers 413 to a request whose declared body is over the
// limit. It is a function of its own, not inlined, so that the exchange it
// builds is not in the stack frame of every request's limitBody: a stack
// frame holds all its locals, and the handler's stack is grown (copied) at
// each doubling past 2, 4 and 8 KiB on the goroutine HTTP/2 and HTTP/3
// start per request.
//
//go:noinline
func (p *Proxy) refuseBody(w http.ResponseWriter, r *http.Request) {
	x := exchange{start: p.now(), requestID: requestID(r.Header)}
	p.fail(w, &x, http.StatusRequestEntityTooLarge, "request body over the limit")
	p.finish(r, &x)
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// Shutdown, like a clean exit.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.serving.Add(1)
	s.mu.Unlock()
	var err error
	if s.h1 == nil {
		err = s.Server.Serve(ln)
	} else {
		s.startH1()
		err = s.accept(ln)
	}
	s.serving.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// accept serves the connections of ln until it fails, backing off from
// temporary errors as net/http does.
func (s *Server) accept(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.ErrorLog.Printf("http: Accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go s.serveConn(c)
	}
}

// serveConn picks the engine of one connection: a TLS connection is
// handshaken first (within ReadHeaderTimeout, as net/http does) and goes
// to net/http if it agreed on "h2"; the rest is the own loop's, which
// hands a cleartext HTTP/2 preface back to net/http.
func (s *Server) serveConn(c net.Conn) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		s.h1.ServeConn(c)
		return
	}
	s.handshaking.Add(1)
	tc.SetDeadline(time.Now().Add(s.Server.ReadHeaderTimeout))
	err := tc.HandshakeContext(context.Background())
	tc.SetDeadline(time.Time{})
	if err != nil {
		s.handshaking.Add(-1)
		if !errors.Is(err, io.EOF) {
			s.ErrorLog.Printf("http: TLS handshake error from %s: %v", c.RemoteAddr(), err)
		}
		tc.Close()
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		if s.h2own != nil {
			s.handshaking.Add(-1) // the server tells StateNew at once
			s.h2own.ServeConn(tc)
			return
		}
		s.h2.deliver(tc)
		s.handshaking.Add(-1)
		return
	}
	s.handshaking.Add(-1) // the loop tells StateNew at once: the connection is fresh then
	s.h1.ServeConn(tc)
}

// connListener is the in-memory listener that hands connections to the
// http.Server.
type connListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to the http.Server, or closes it if the server is gone.
func (l *connListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "h1serve-to-net/http" }

// settled records that a connection left the fresh state: its first request
// arrived, or it closed.
func (s *Server) settled(c net.Conn) {
	if _, ok := s.fresh.LoadAndDelete(c); ok {
		s.freshN.Add(-1)
	}
}

// Shutdown stops the server without losing a request. http.Server.Shutdown
// drops a request that it reads after shutdown began, so a connection that
// was accepted a moment before would see its first request go unanswered.
// Instead: the listeners close first (a successor that inherited them keeps
// accepting); once every Serve has returned (a wrapping listener delivers
// what it had accepted first) and the connections accepted have sent their
// first request, or a second has passed, the graceful shutdown starts. Requests in
// flight get until ctx is done; then every connection, tunnels included, is
// closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	grace := time.NewTimer(time.Second)
	defer grace.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for s.freshN.Load() > 0 || s.serving.Load() > 0 || s.handshaking.Load() > 0 {
		select {
		case <-tick.C:
		case <-grace.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	var err error
	if s.h1 == nil {
		err = s.Server.Shutdown(ctx)
	} else {
		// Both engines at once: idle connections close, requests in flight
		// finish until ctx is done.
		own := make(chan error, 2)
		go func() { own <- s.h1.Shutdown(ctx) }()
		if s.h2own != nil {
			go func() { own <- s.h2own.Shutdown(ctx) }()
		}
		err = s.Server.Shutdown(ctx)
		s.h2.Close()
		if e := <-own; err == nil {
			err = e
		}
		if s.h2own != nil {
			if e := <-own; err == nil {
				err = e
			}
		}
	}
	s.p.CloseTunnels()
	if err != nil {
		s.Server.Close()
		if s.h1 != nil {
			s.h1.Close()
		}
		if s.h2own != nil {
			s.h2own.Close()
		}
	}
	return err
}

// Close closes the listeners and every connection at once but the tunnels
// (http.Server.Close, for both engines).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	err := s.Server.Close()
	if s.h1 != nil {
		s.h2.Close()
		s.h1.Close()
	}
	if s.h2own != nil {
		s.h2own.Close()
	}
	return err
}

// zapWriter adapts net/http's error log to zap.
type zapWriter struct{ l *zap.Logger }

func (z zapWriter) Write(b []byte) (int, error) {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	z.l.Debug("http server", zap.ByteString("message", b))
	return len(b), nil
}
