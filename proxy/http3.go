package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// HTTP/3 stream and flow-control limits, those of the HTTP/2 listener
// (net/http's defaults): at most 250 requests at once on one connection, and
// 1 MiB of request body buffered for a stream and for a connection.
const (
	h3MaxStreams     = 250
	h3MaxUniStreams  = 16 // HTTP/3 needs 3 (control, QPACK encoder and decoder)
	h3ReceiveWindow  = 1 << 20
	h3IdleCloseGrace = time.Second // after GOAWAY, before idle connections are closed
)

// HTTP3Server serves the proxy over HTTP/3 (QUIC, RFC 9114) on a UDP socket:
// the same handler, limits and metrics as the TCP listeners' Server, 0-RTT
// off, and a shutdown that sends GOAWAY before it closes (see Shutdown).
type HTTP3Server struct {
	p     *Proxy
	srv   *http3.Server
	quic  *quic.Config
	tls   *tls.Config
	conns sync.Map // *quic.Conn -> *h3Conn, the connections open

	// mu guards tr, ln, pc and closing.
	mu      sync.Mutex
	tr      *quic.Transport
	ln      *quic.Listener
	pc      net.PacketConn
	closing bool
}

// h3Conn is one QUIC connection's count of requests in its handler, and
// when the last one ended.
type h3Conn struct {
	conn   *quic.Conn
	active atomic.Int64
	ended  atomic.Int64 // unix nanoseconds
}

type h3ConnKey struct{}

// NewHTTP3Server returns an HTTP3Server for the listener named name (it
// labels the connection metrics) that serves p with the certificates of
// tlsConf (its GetCertificate and session tickets; ALPN becomes h3). The
// limits of o apply as on the TCP listeners: the handshake is bounded by
// ReadHeaderTimeout, a connection that carries no request for IdleTimeout
// is closed, a header block over MaxHeaderBytes gets 431, bodies get the
// same 413 and 408.
func (p *Proxy) NewHTTP3Server(name string, o ServerOptions, tlsConf *tls.Config) *HTTP3Server {
	o.defaults()
	s := &HTTP3Server{p: p, tls: http3.ConfigureTLSConfig(tlsConf)}
	s.quic = &quic.Config{
		HandshakeIdleTimeout: o.ReadHeaderTimeout,
		MaxIdleTimeout:       o.IdleTimeout,
		MaxIncomingStreams:   h3MaxStreams,
		// A request stream whose handler ended is replaced at once:
		// http3 releases its credit.
		MaxIncomingUniStreams:          h3MaxUniStreams,
		MaxStreamReceiveWindow:         h3ReceiveWindow,
		MaxConnectionReceiveWindow:     h3ReceiveWindow,
		InitialStreamReceiveWindow:     h3ReceiveWindow / 2,
		InitialConnectionReceiveWindow: h3ReceiveWindow / 2,
		// 0-RTT data can be replayed by anyone who saw it (RFC 9001
		// section 9.2); the proxy forwards requests that change state.
		Allow0RTT: false,
	}
	open := p.metrics.connections.WithLabelValues(name)
	inner := p.limited(o)
	s.srv = &http3.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, ok := r.Context().Value(h3ConnKey{}).(*h3Conn); ok {
				c.active.Add(1)
				defer func() {
					c.ended.Store(p.now().UnixNano())
					c.active.Add(-1)
				}()
			}
			inner.ServeHTTP(&h3Writer{ResponseWriter: w}, r)
		}),
		MaxHeaderBytes: o.MaxHeaderBytes,
		IdleTimeout:    o.IdleTimeout,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			hc := &h3Conn{conn: c}
			s.conns.Store(c, hc)
			open.Inc()
			context.AfterFunc(c.Context(), func() {
				s.conns.Delete(c)
				open.Dec()
			})
			return context.WithValue(ctx, h3ConnKey{}, hc)
		},
	}
	return s
}

// Serve accepts QUIC connections on pc until Shutdown, and closes pc then.
// It returns nil after a Shutdown, like a clean exit.
func (s *HTTP3Server) Serve(pc net.PacketConn) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		pc.Close()
		return nil
	}
	// No StatelessResetKey: after a hand-over the predecessor and its
	// successor read the same socket for a while, and a reset sent for a
	// packet of the other's connection would end that connection.
	tr := &quic.Transport{Conn: pc}
	ln, err := tr.Listen(s.tls, s.quic)
	if err != nil {
		s.mu.Unlock()
		tr.Close()
		return errors.Join(errors.New("proxy: http3 listen"), err)
	}
	s.tr, s.ln, s.pc = tr, ln, pc
	s.mu.Unlock()
	err = s.srv.ServeListener(ln)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server without losing a request: it stops accepting
// connections, sends every connection a GOAWAY (RFC 9114 section 5.2), so
// that clients send new requests on a new connection, and lets the requests
// in flight finish until ctx is done. Connections with no request in flight
// are closed a second after the GOAWAY, as net/http closes idle connections;
// at ctx's end every connection is closed. The socket is closed last.
// (A client is to close its connection itself once its requests are
// answered after a GOAWAY, as browsers and quic-go do; the ones that
// do not are closed for it.)
func (s *HTTP3Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		s.ln.Close() // the Transport stays: it carries the open connections
	}
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.srv.Shutdown(ctx) }()
	grace := time.NewTimer(h3IdleCloseGrace)
	defer grace.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	idleClose := false
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-grace.C:
			idleClose = true
		case <-tick.C:
			if idleClose {
				s.closeIdle(s.p.now())
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tr != nil {
		s.tr.Close()
		s.pc.Close()
	}
	return err
}

// closeIdle closes the connections that have had no request in flight for
// h3IdleCloseGrace: closing a connection discards what it has not sent, so
// one whose last answer was just written keeps it a while.
func (s *HTTP3Server) closeIdle(now time.Time) {
	s.conns.Range(func(_, v any) bool {
		c := v.(*h3Conn)
		if c.active.Load() == 0 && now.Sub(time.Unix(0, c.ended.Load())) >= h3IdleCloseGrace {
			c.conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "shutting down")
		}
		return true
	})
}

// h3Writer drops the connection-specific fields that HTTP/3 forbids (RFC
// 9114 section 4.2; a client rejects the response) from what handlers set
// for HTTP/1.1, such as the Connection: close after a 408. net/http's
// HTTP/2 server drops them itself; quic-go's sends them.
type h3Writer struct {
	http.ResponseWriter
	wrote bool
}

func (w *h3Writer) clean() {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.ResponseWriter.Header()
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"} {
		delete(h, k)
	}
}

func (w *h3Writer) WriteHeader(code int) {
	if code >= 200 { // 1xx answers come before the final header block
		w.clean()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *h3Writer) Write(b []byte) (int, error) {
	w.clean()
	return w.ResponseWriter.Write(b)
}

func (w *h3Writer) Flush() {
	w.clean()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach quic-go's writer (read
// deadlines for the body timeout).
func (w *h3Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// AltSvc is the Alt-Svc field value (RFC 7838) that advertises HTTP/3 on
// UDP port for maxAge.
func AltSvc(port int, maxAge time.Duration) string {
	return `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.FormatInt(int64(maxAge/time.Second), 10)
}

// AdvertiseHTTP3 sets Alt-Svc to altSvc on the responses of h to requests
// that came over TLS, so that browsers move to HTTP/3 on their next
// connection. A task's own Alt-Svc replaces it.
func AdvertiseHTTP3(h http.Handler, altSvc string) http.Handler {
	v := []string{altSvc}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header()["Alt-Svc"] = v
		}
		h.ServeHTTP(w, r)
	})
}
