// Package h1serve serves HTTP/1.x on a net.Conn with one goroutine per
// connection that reads its requests itself (with the strict h1wire
// parser), holds no read or write buffer while the connection is idle, and
// calls an http.Handler as net/http's server does. It is the edge's own
// HTTP/1 server side; HTTP/2 stays on net/http (see H2C).
package h1serve

import (
	"context"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/internal/h1wire"
	"github.com/swarmgate/swarmgate/internal/workpool"
)

// Server serves HTTP/1.x connections handed to ServeConn. Its fields must
// not change once it serves.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request head, from its first byte
	// (for a connection's first request, from ServeConn) to its end, and a
	// TLS handshake. If zero, 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. If zero, 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head; larger gets 431. If zero, 64 KiB.
	MaxHeaderBytes int
	// ParkIdle is how long a plain TCP keep-alive connection waits for its
	// next request on a goroutine of its own; after that it is parked
	// until the request comes or IdleTimeout passes: it then holds no
	// goroutine (on Linux; see parker). If zero, 1s; if negative, never.
	ParkIdle time.Duration
	// ConnContext, if not nil, derives a connection's context (and so every
	// request's) from the base one, as http.Server.ConnContext.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState, if not nil, is told a connection's states as
	// http.Server.ConnState is: StateNew when ServeConn starts, StateActive
	// once a request head is read, StateIdle after each response,
	// StateHijacked, StateClosed.
	ConnState func(net.Conn, http.ConnState)
	// H2C, if not nil, takes over a plain (not TLS) connection whose first
	// bytes are the HTTP/2 connection preface ("PRI * HTTP/2.0"): it gets a
	// net.Conn that replays the bytes read so far, after ConnState was told
	// StateHijacked. If nil, the preface is refused as any HTTP/2.0 request
	// is (505).
	H2C func(net.Conn)
	// HTTPServer is the value of http.ServerContextKey in request contexts.
	HTTPServer *http.Server
	// ErrorLog receives handler panics and TLS handshake errors. If nil,
	// the log package's standard logger.
	ErrorLog *log.Logger

	// mu guards conns.
	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutting atomic.Bool
	date     atomic.Pointer[dateLine]
	// workers run the requests, off the connections' goroutines, so that
	// a connection's own goroutine, which waits between requests, keeps
	// the small stack of that wait: a request through the proxy grows the
	// stack it runs on to tens of KiB, and a worker keeps it for the next.
	workers workpool.Pool
	// parker holds the idle connections parked.
	parker parker
}

// Defaults, as ServerOptions in the proxy has them.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxHeaderBytes    = 64 << 10
	defaultParkIdle          = time.Second
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

func (s *Server) parkIdle() time.Duration {
	if s.ParkIdle > 0 {
		return s.ParkIdle
	}
	return defaultParkIdle
}

func (s *Server) limits() h1wire.Limits {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = defaultMaxHeaderBytes
	}
	return h1wire.Limits{MaxHeaderBytes: n}
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

// ServeConn serves HTTP/1.x on rwc until the client or the server closes
// it, the connection is hijacked, or it is handed to H2C. A *tls.Conn whose
// handshake has not run is handshaken first. ServeConn closes rwc unless
// it was hijacked or handed over.
func (s *Server) ServeConn(rwc net.Conn) {
	c := newConn(s, rwc)
	if !s.track(c, true) {
		rwc.Close()
		return
	}
	c.serve()
}

// track adds or removes c from the connections Shutdown and Close see. It
// refuses to add once Close has run.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.conns == nil {
			s.conns = make(map[*conn]struct{})
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

// Shutdown stops keep-alive: a connection closes after the response it is
// writing, an idle one at once, and one that has sent nothing for 5s (a new
// connection's first request may still come) too. It returns once every
// connection is closed, or ctx's error when ctx is done first. Hijacked
// connections are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.parker.close()
	defer s.workers.Close()
	wait := time.Millisecond
	for {
		if s.closeIdle() {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// closeIdle closes the connections that wait for a request, and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIfIdle(5 * time.Second)
	}
	return len(s.conns) == 0
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.workers.Close()
	s.parker.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.rwc.Close()
	}
	return nil
}

// Parked returns how many of the connections the server holds are parked.
func (s *Server) Parked() int { return s.parker.parkedCount() }

// Open returns how many connections the server holds.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// statusLine returns "HTTP/1.x code text\r\n".
func statusLine(b []byte, minor, code int) []byte {
	if minor == 0 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	b = append(b, text...)
	return append(b, "\r\n"...)
}
