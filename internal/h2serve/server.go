// Package h2serve serves HTTP/2 (RFC 9113) on a net.Conn: the edge's own
// server side for the connections that agree on "h2" in their TLS
// handshake or open with the cleartext preface. It reads frames with
// golang.org/x/net/http2's Framer (which checks frame sizes, ordering,
// padding and the HPACK header blocks) and keeps the rest itself: one
// goroutine per connection reads its frames; each request's handler runs
// on a pooled worker whose stack stays grown; handlers write their frames
// into the connection's buffer themselves, under a lock, and the last
// writer of a burst flushes it, so that many streams' responses share a
// TLS record and a write(2). net/http's server instead starts a goroutine
// per stream, passes every frame through its connection's loop over
// channels and flushes from a goroutine of its own (issue 16's profile:
// a third of its CPU per request).
package h2serve

import (
	"context"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/internal/workpool"
)

// Server serves HTTP/2 connections handed to ServeConn. Its fields must
// not change once it serves.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds the wait for the client's preface and first
	// SETTINGS frame. If zero, 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a connection (GOAWAY, then close) that had no
	// stream open for that long. If zero, 120s.
	IdleTimeout time.Duration
	// WriteTimeout bounds a write to the client that makes no progress, and
	// a response that waits for the client's flow-control window to open:
	// the connection is closed, or the stream reset (NGINX's send_timeout).
	// If zero, 60s.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request's header list (HPACK-decoded sizes,
	// RFC 9113 section 6.5.2): a larger one is answered 431. If zero, 64 KiB.
	MaxHeaderBytes int
	// MaxConcurrentStreams is the most streams a client may have open, and
	// handlers running (a stream the client reset counts until its handler
	// returns). If zero, 250, as net/http's.
	MaxConcurrentStreams uint32
	// ConnContext, if not nil, derives a connection's context (and so every
	// request's) from the base one, as http.Server.ConnContext.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState, if not nil, is told a connection's states as
	// http.Server.ConnState is: StateNew when ServeConn starts, StateActive
	// when its first stream opens after none, StateIdle when its last one
	// ends, StateClosed.
	ConnState func(net.Conn, http.ConnState)
	// HTTPServer is the value of http.ServerContextKey in request contexts.
	HTTPServer *http.Server
	// ErrorLog receives handler panics and protocol errors worth telling.
	// If nil, the log package's standard logger.
	ErrorLog *log.Logger

	// mu guards conns.
	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutting atomic.Bool
	date     atomic.Pointer[dateField]
	// workers run the handlers, so that the stack a request through the
	// proxy grows (tens of KiB) is not grown again for each stream.
	workers workpool.Pool
}

// Defaults, as the proxy's ServerOptions and net/http's HTTP/2 server
// have them.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultMaxHeaderBytes    = 64 << 10
	defaultMaxStreams        = 250
)

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	return defaultReadHeaderTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return defaultIdleTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return defaultWriteTimeout
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes > 0 {
		return uint32(s.MaxHeaderBytes)
	}
	return defaultMaxHeaderBytes
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams > 0 {
		return s.MaxConcurrentStreams
	}
	return defaultMaxStreams
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (s *Server) setState(c net.Conn, st http.ConnState) {
	if s.ConnState != nil {
		s.ConnState(c, st)
	}
}

// ServeConn serves HTTP/2 on rwc until the connection closes. rwc is a
// *tls.Conn whose handshake agreed on "h2", or a plain connection whose
// first bytes are the client preface (RFC 9113 section 3.4).
func (s *Server) ServeConn(rwc net.Conn) {
	c := newConn(s, rwc)
	if !s.track(c, true) {
		rwc.Close()
		return
	}
	defer s.track(c, false)
	c.serve()
}

// track adds c to the server's connections, or removes it; adding fails
// once Shutdown or Close began.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.shutting.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

// Shutdown sends every connection a GOAWAY that names the last stream it
// took (RFC 9113 section 6.8: the client retries later ones on a new
// connection), lets the streams in flight finish, and closes each
// connection once it has none. It returns when every connection is
// closed, or with ctx's error when ctx is done first (the rest are closed
// then).
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		go c.goAway()
	}
	s.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.Open() == 0 {
			s.workers.Close()
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	s.workers.Close()
	return nil
}

// Open returns how many connections are being served.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// dateField is a Date value for one second, shared by every response of
// that second.
type dateField struct {
	unix  int64
	value string
}

// currentDate returns the Date field's value for a response sent at now.
func (s *Server) currentDate(now time.Time) string {
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.unix == sec {
		return d.value
	}
	d := &dateField{unix: sec, value: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.value
}
