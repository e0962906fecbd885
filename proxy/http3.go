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
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
	"go.uber.org/zap"
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
	// Handshakes, if set before Serve, is called once for each QUIC
	// connection whose TLS handshake began (a valid Initial packet came):
	// with true when the handshake completed, with false when the
	// connection ended before it did (failed, timed out, abandoned). QUIC
	// always runs TLS 1.3.
	Handshakes func(complete bool)

	p             *Proxy
	srv           *http3.Server
	quic          *quic.Config
	tls           *tls.Config
	headerTimeout time.Duration
	conns         sync.Map // *quic.Conn -> *h3Conn, the connections open

	// mu guards tr, ln, pc and closing.
	mu      sync.Mutex
	tr      *quic.Transport
	ln      *quic.Listener
	pc      net.PacketConn
	closing bool
}

// h3Conn is one QUIC connection's count of requests in its handler, when
// the last one ended, and its request streams still waiting for their
// headers.
type h3Conn struct {
	s      *HTTP3Server
	active atomic.Int64
	ended  atomic.Int64 // unix nanoseconds

	// mu guards conn, next, waiting, early and complete.
	mu      sync.Mutex
	conn    *quic.Conn    // set once http3 serves the connection
	next    quic.StreamID // the lowest client request stream not seen yet
	waiting map[quic.StreamID]*time.Timer
	// early are the streams at or above next whose wait ended before the
	// trace reported them: quic-go hands a packet's frames to the streams
	// before it records the packet, so a handler can start first.
	early    map[quic.StreamID]struct{}
	complete bool // the TLS handshake completed
}

type h3ConnKey struct{}

// NewHTTP3Server returns an HTTP3Server for the listener named name (it
// labels the connection metrics) that serves p with the certificates of
// tlsConf (its GetCertificate and session tickets; ALPN becomes h3). The
// limits of o apply as on the TCP listeners: the handshake is bounded by
// ReadHeaderTimeout, and so is each request stream from its first byte to
// its complete header block (see watchHeaders), a connection that carries
// no request for IdleTimeout is closed, a header block over MaxHeaderBytes
// gets 431, bodies get the same 413 and 408.
func (p *Proxy) NewHTTP3Server(name string, o ServerOptions, tlsConf *tls.Config) *HTTP3Server {
	o.defaults()
	s := &HTTP3Server{p: p, tls: http3.ConfigureTLSConfig(tlsConf), headerTimeout: o.ReadHeaderTimeout}
	s.quic = &quic.Config{
		// quic-go's http3.Server has no header timeout; the connection's
		// trace shows when each request stream opens (h3Trace).
		Tracer: s.trace,
		// quic-go aborts a handshake silent for this long, and any that
		// is not done in twice this: the handshake gets ReadHeaderTimeout
		// in all, as on the TCP listeners.
		HandshakeIdleTimeout: o.ReadHeaderTimeout / 2,
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
				// In flight before the stream stops waiting, so that
				// closeIdle sees it as one or the other.
				c.active.Add(1)
				if b, ok := r.Body.(interface{ StreamID() quic.StreamID }); ok {
					c.headersIn(b.StreamID())
				}
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
			hc, ok := ctx.Value(h3ConnKey{}).(*h3Conn) // from the Transport's ConnContext
			if !ok {
				hc = s.newConn()
				ctx = context.WithValue(ctx, h3ConnKey{}, hc)
			}
			hc.serving(c)
			s.conns.Store(c, hc)
			open.Inc()
			context.AfterFunc(c.Context(), func() {
				s.conns.Delete(c)
				open.Dec()
			})
			return ctx
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
	tr := &quic.Transport{Conn: pc, ConnContext: func(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
		return context.WithValue(ctx, h3ConnKey{}, s.newConn()), nil
	}}
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
// one whose last answer was just written keeps it a while. A request whose
// first frames came but whose handler has not started yet (a stream
// waiting for its headers) counts as in flight: the client sent it before
// it read the GOAWAY, and it is answered.
func (s *HTTP3Server) closeIdle(now time.Time) {
	s.conns.Range(func(_, v any) bool {
		c := v.(*h3Conn)
		if c.idle() && now.Sub(time.Unix(0, c.ended.Load())) >= h3IdleCloseGrace {
			c.close(http3.ErrCodeNoError, "shutting down")
		}
		return true
	})
}

// idle reports whether c has no request in its handler and no request
// stream waiting for its headers.
func (c *h3Conn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting) == 0 && c.active.Load() == 0
}

func (s *HTTP3Server) newConn() *h3Conn {
	return &h3Conn{s: s, waiting: make(map[quic.StreamID]*time.Timer), early: make(map[quic.StreamID]struct{})}
}

// serving records the connection http3 serves as c.
func (c *h3Conn) serving(conn *quic.Conn) {
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
}

// close closes the connection with code, if http3 serves it yet.
func (c *h3Conn) close(code http3.ErrCode, msg string) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.CloseWithError(quic.ApplicationErrorCode(code), msg)
	}
}

// The header timeout of HTTP/3 request streams (watchHeaders).
//
// On TCP, ReadHeaderTimeout bounds the time from a connection's first byte
// to its request's headers; quic-go's http3.Server has no such bound, and
// a request stream whose HEADERS frame never completes would hold its
// stream and goroutine for as long as the client keeps the connection
// alive (a PING resets QUIC's idle timer). quic-go hands the server no
// stream before http3 has read its headers, so the connection's trace
// (quic.Config.Tracer) reports the frames it receives and sends instead:
// a client request stream is waiting from its first STREAM frame until its
// request reaches the handler, the server answers it on its own (431, a
// reset) or the client resets it. A stream still waiting ReadHeaderTimeout
// after it opened closes its connection with H3_REQUEST_INCOMPLETE, as
// ReadHeaderTimeout closes a TCP connection: a client that sends its
// headers never waits that long (they go in the stream's first packets).

// watchHeaders marks the client request streams up to id as opened now.
// Streams open in order (RFC 9000 section 3.2): a frame of stream id opens
// every lower one.
func (c *h3Conn) watchHeaders(id quic.StreamID) {
	if id%4 != 0 || c.s.headerTimeout <= 0 { // only client-initiated bidirectional streams carry requests
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := 0; c.next <= id && n < h3MaxStreams; n++ { // quic-go refuses streams beyond the limit
		sid := c.next
		c.next += 4
		if _, done := c.early[sid]; done {
			delete(c.early, sid)
			continue
		}
		c.waiting[sid] = time.AfterFunc(c.s.headerTimeout, func() { c.headerTimeout(sid) })
	}
}

// headersIn ends the wait of stream id: its headers came, or the stream
// ended without them.
func (c *h3Conn) headersIn(id quic.StreamID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.waiting[id]; ok {
		t.Stop()
		delete(c.waiting, id)
	} else if id >= c.next && id%4 == 0 && len(c.early) < h3MaxStreams {
		c.early[id] = struct{}{}
	}
}

// headerTimeout closes the connection if stream id is still waiting.
func (c *h3Conn) headerTimeout(id quic.StreamID) {
	c.mu.Lock()
	_, waiting := c.waiting[id]
	delete(c.waiting, id)
	c.mu.Unlock()
	if waiting {
		c.s.p.log.Debug("http3: request headers not complete within the header timeout; closing the connection",
			zap.Int64("stream", int64(id)), zap.Duration("timeout", c.s.headerTimeout))
		c.close(http3.ErrCodeRequestIncomplete, "request header timeout")
	}
}

// finish stops the connection's timers and reports its handshake if it
// never completed.
func (c *h3Conn) finish() {
	c.mu.Lock()
	for id, t := range c.waiting {
		t.Stop()
		delete(c.waiting, id)
	}
	clear(c.early)
	complete := c.complete
	c.mu.Unlock()
	if !complete && c.s.Handshakes != nil {
		c.s.Handshakes(false)
	}
}

// trace is the quic.Config's Tracer: the connection's events go to its
// h3Conn, put in its context by the Transport's ConnContext.
func (s *HTTP3Server) trace(ctx context.Context, isClient bool, _ quic.ConnectionID) qlogwriter.Trace {
	c, ok := ctx.Value(h3ConnKey{}).(*h3Conn)
	if isClient || !ok {
		return nil
	}
	return &h3Trace{c: c}
}

// h3Trace hands the connection's own events to its h3Conn, and no recorder
// to the other producers (http3's), which then build no events at all.
type h3Trace struct {
	c     *h3Conn
	taken atomic.Bool
}

func (t *h3Trace) AddProducer() qlogwriter.Recorder {
	if t.taken.Swap(true) {
		return nil
	}
	return h3Recorder{t.c}
}

// h3Recorder reads the events watchHeaders and Handshakes need and drops
// the rest.
type h3Recorder struct{ c *h3Conn }

func (r h3Recorder) RecordEvent(ev qlogwriter.Event) {
	switch e := ev.(type) {
	case qlog.PacketReceived:
		for _, f := range e.Frames {
			switch fr := f.Frame.(type) {
			case *qlog.StreamFrame:
				r.c.watchHeaders(fr.StreamID)
			case *qlog.ResetStreamFrame: // the client gave the request up
				r.c.watchHeaders(fr.StreamID) // a reset opens the stream too
				r.c.headersIn(fr.StreamID)
			}
		}
	case qlog.PacketSent:
		for _, f := range e.Frames {
			switch fr := f.Frame.(type) {
			case *qlog.StreamFrame: // an answer without the handler: 431, 400
				r.c.headersIn(fr.StreamID)
			case *qlog.ResetStreamFrame:
				r.c.headersIn(fr.StreamID)
			}
		}
	case qlog.ConnectionStateUpdated:
		if e.State == qlog.ConnectionStateHandshakeComplete {
			r.c.mu.Lock()
			r.c.complete = true
			r.c.mu.Unlock()
			if h := r.c.s.Handshakes; h != nil {
				h(true)
			}
		}
	}
}

func (r h3Recorder) Close() error {
	r.c.finish()
	return nil
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
