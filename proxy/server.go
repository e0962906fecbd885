package proxy

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

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
}

// Server is an http.Server for one kind of listener, with a shutdown that
// loses no request (see Shutdown).
type Server struct {
	*http.Server
	p *Proxy

	// fresh holds the connections accepted whose first request is not read
	// yet; freshN counts them.
	fresh  sync.Map
	freshN atomic.Int64
	// guards holds each open connection's reset accounting (connGuard).
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
	return srv
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
			x := exchange{start: p.now(), requestID: requestID(r.Header)}
			p.fail(w, &x, http.StatusRequestEntityTooLarge, "request body over the limit")
			p.finish(r, &x)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		p.ServeHTTP(w, r)
	})
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
	err := s.Server.Serve(ln)
	s.serving.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

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
	for s.freshN.Load() > 0 || s.serving.Load() > 0 {
		select {
		case <-tick.C:
		case <-grace.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	err := s.Server.Shutdown(ctx)
	s.p.CloseTunnels()
	if err != nil {
		s.Server.Close()
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
