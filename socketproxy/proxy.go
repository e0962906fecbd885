package socketproxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/swarmgate/swarmgate/internal/opt"
	"go.uber.org/zap"
)

// Options configure a Proxy. Only Upstream is required.
type Options struct {
	// Upstream is the Docker Engine API: unix:///path/to/docker.sock or
	// tcp://host:port (plain HTTP).
	Upstream string
	// Logger receives one line per denied request and upstream failures.
	// If nil, nothing is logged.
	Logger *zap.Logger
	// Registerer receives the metrics. If nil, they are not registered.
	Registerer prometheus.Registerer
	// AllowFrom lists the client networks that may connect. If empty, any
	// client may.
	AllowFrom []netip.Prefix
	// MaxQueryBytes caps the query string. Zero means DefaultMaxQuery.
	MaxQueryBytes int
	// MaxResponseBytes caps a buffered (non-streaming) upstream response;
	// a larger one is answered with 502. Zero means 64 MiB.
	MaxResponseBytes int64
	// UpstreamTimeout bounds a non-streaming upstream request. Zero means 30s.
	UpstreamTimeout time.Duration
	// EventBuffer is how many event lines a subscriber may fall behind
	// before it is disconnected. Zero means 256.
	EventBuffer int
	// EventWriteTimeout bounds one write to an event subscriber. Zero
	// means 30s.
	EventWriteTimeout time.Duration
	// ResumeWindow is how long a shared /events stream may stay lost
	// before its subscribers are disconnected. Zero means 10s.
	ResumeWindow time.Duration
	// Backoff returns the wait before the n-th (from 0) attempt to reopen a
	// lost /events stream. If nil, 100ms doubling up to 2s.
	Backoff func(n int) time.Duration
}

// Proxy is an http.Handler that forwards allow-listed, read-only requests
// to the Docker Engine API and denies everything else.
type Proxy struct {
	opt      Options
	log      *zap.Logger
	m        *metrics
	client   *http.Client
	base     string // scheme://host of the upstream URL
	flights  flights
	hubs     hubs
	ctx      context.Context // cancelled by Close; parent of upstream work that outlives a client
	cancel   context.CancelFunc
	streams  context.Context // cancelled by EndStreams or Close; parent of /events streams
	endAll   context.CancelFunc
	wg       sync.WaitGroup // upstream goroutines (flights, event hubs)
	maxQuery int
}

// New returns a Proxy for o.Upstream.
func New(o Options) (*Proxy, error) {
	tr, base, err := upstreamTransport(o.Upstream)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	opt.Positive(&o.MaxQueryBytes, DefaultMaxQuery)
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 64 << 20
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 30 * time.Second
	}
	opt.Positive(&o.EventBuffer, 256)
	if o.EventWriteTimeout <= 0 {
		o.EventWriteTimeout = 30 * time.Second
	}
	if o.ResumeWindow <= 0 {
		o.ResumeWindow = 10 * time.Second
	}
	if o.Backoff == nil {
		o.Backoff = defaultBackoff
	}
	ctx, cancel := context.WithCancel(context.Background())
	streams, endAll := context.WithCancel(ctx)
	p := &Proxy{
		streams:  streams,
		endAll:   endAll,
		opt:      o,
		log:      o.Logger,
		m:        newMetrics(o.Registerer),
		client:   &http.Client{Transport: tr, CheckRedirect: noRedirect},
		base:     base,
		ctx:      ctx,
		cancel:   cancel,
		maxQuery: o.MaxQueryBytes,
	}
	p.flights.calls = make(map[string]*call)
	p.hubs.m = make(map[string]*hub)
	return p, nil
}

func defaultBackoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 5)
	return min(d, 2*time.Second)
}

// noRedirect hands redirects to the client unchanged: the Engine does not
// send them, and following one would leave the allow-list.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// upstreamTransport returns a transport that reaches the Docker Engine at
// addr, and the scheme://host to put in request URLs.
func upstreamTransport(addr string) (*http.Transport, string, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, "", fmt.Errorf("socketproxy: upstream %q: %w", addr, err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		// Bytes pass through as the Engine wrote them.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return nil, "", fmt.Errorf("socketproxy: upstream %q: no socket path", addr)
		}
		path := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
		// The Engine ignores Host on its socket; the name is only a label.
		return tr, "http://docker", nil
	case "tcp", "http":
		if u.Host == "" {
			return nil, "", fmt.Errorf("socketproxy: upstream %q: no host", addr)
		}
		tr.DialContext = dialer.DialContext
		return tr, "http://" + u.Host, nil
	}
	return nil, "", fmt.Errorf("socketproxy: upstream %q: want unix:// or tcp://", addr)
}

// EndStreams disconnects every /events client and closes the upstream
// streams, leaving other requests alone. Streams never end by themselves, so
// a graceful shutdown calls it before http.Server.Shutdown. New /events
// requests fail afterwards.
func (p *Proxy) EndStreams() { p.endAll() }

// Close stops the shared upstream work (event streams, requests in flight)
// and waits for it. Serve no more requests after Close.
func (p *Proxy) Close() {
	p.cancel()
	p.wg.Wait()
	p.client.CloseIdleConnections()
}

// NewServer returns an http.Server for p with the timeouts and limits a
// socket-proxy listener needs. tlsConf may be nil. WriteTimeout bounds every
// response except /events, which clears it per stream and bounds each write
// instead.
func (p *Proxy) NewServer(tlsConf *tls.Config) *http.Server {
	errLog, _ := zap.NewStdLogAt(p.log.Named("http"), zap.WarnLevel)
	return &http.Server{
		Handler:           p,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 5 * time.Second,
		// Requests have no body, so this bounds the headers too; net/http
		// clears the read deadline while a handler runs, so it does not
		// cut event streams.
		ReadTimeout:  10 * time.Second,
		WriteTimeout: p.opt.UpstreamTimeout + 10*time.Second,
		IdleTimeout:  90 * time.Second,
		// Request line and headers together; the query cap is well inside.
		MaxHeaderBytes: 8 << 10,
		// HTTP/1.1 only: no h2 (TLSNextProto non-nil and empty), so no
		// second framing layer to reason about. OPTIONS * reaches the
		// handler and is denied like everything else.
		TLSNextProto:                 map[string]func(*http.Server, *tls.Conn, http.Handler){},
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     errLog,
	}
}

// decision is the outcome of checking one request.
type decision struct {
	endpoint Endpoint
	path     string // normalised
	query    string // raw, validated
	reason   string // why it was denied; "" when allowed
}

// Reasons for denial; they are the values of the "reason" metric label.
const (
	reasonClient  = "client"
	reasonTarget  = "target"
	reasonPath    = "path"
	reasonQuery   = "query"
	reasonMethod  = "method"
	reasonBody    = "body"
	reasonUpgrade = "upgrade"
	reasonProto   = "protocol"
)

// decide checks r against the allow-list. It reads only the request line
// and headers.
func decide(r *http.Request, maxQuery int) decision {
	d := decision{endpoint: EndpointOther}
	if r.ProtoMajor != 1 {
		d.reason = reasonProto
		return d
	}
	// r.RequestURI is the target as sent. Absolute-form (http://host/x),
	// authority-form (CONNECT host:port) and asterisk-form (*) do not start
	// with '/'; r.URL would have hidden the difference.
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if !strings.HasPrefix(rawPath, "/") {
		d.reason = reasonTarget
		return d
	}
	path, err := Normalize(rawPath)
	if err != nil {
		d.reason = reasonPath
		return d
	}
	d.path = path
	d.endpoint = route(path)
	if d.endpoint == EndpointOther {
		d.reason = reasonPath
		return d
	}
	if _, ok := Match(r.Method, path); !ok {
		d.reason = reasonMethod
		return d
	}
	if err := CheckQuery(rawQuery, maxQuery); err != nil {
		d.reason = reasonQuery
		return d
	}
	d.query = rawQuery
	// Nothing on the list takes a body; a body on a GET is a smuggling
	// attempt or a mistake.
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 ||
		r.Header.Get("Content-Length") != "" && r.Header.Get("Content-Length") != "0" {
		d.reason = reasonBody
		return d
	}
	// The Engine hijacks the connection for attach, exec and some
	// sessions; none is on the list, but no upgrade is ever forwarded.
	if r.Header.Get("Upgrade") != "" || r.Header.Get("Http2-Settings") != "" ||
		headerHasToken(r.Header, "Connection", "upgrade") {
		d.reason = reasonUpgrade
		return d
	}
	return d
}

// headerHasToken reports whether the comma-separated header name lists token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ServeHTTP denies or forwards r.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.clientAllowed(r.RemoteAddr) {
		p.deny(w, r, decision{endpoint: EndpointOther, reason: reasonClient})
		return
	}
	d := decide(r, p.maxQuery)
	if d.reason != "" {
		p.deny(w, r, d)
		return
	}
	p.m.requests.WithLabelValues("allowed", string(d.endpoint)).Inc()
	target := d.path
	if d.query != "" {
		target += "?" + d.query
	}
	if d.endpoint == EndpointEvents {
		if shareable(d.query) {
			p.serveSharedEvents(w, r, d.path, d.query)
		} else {
			p.serveStream(w, r, d.endpoint, target)
		}
		return
	}
	p.serveCoalesced(w, r, d.endpoint, target)
}

func (p *Proxy) clientAllowed(remote string) bool {
	if len(p.opt.AllowFrom) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, pfx := range p.opt.AllowFrom {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// deny answers 403 in the Engine's error shape, logs one line and closes
// the connection, so that nothing the client sent after the headers (a body,
// a pipelined request) is ever read as a request.
func (p *Proxy) deny(w http.ResponseWriter, r *http.Request, d decision) {
	p.m.requests.WithLabelValues("denied", string(d.endpoint)).Inc()
	p.m.denied.WithLabelValues(d.reason).Inc()
	p.log.Warn("denied",
		zap.String("method", r.Method),
		zap.String("path", truncate(r.RequestURI, 256)),
		zap.String("client", r.RemoteAddr),
		zap.String("reason", d.reason))
	msg := "socket-proxy: forbidden: " + r.Method + " is not allowed on this path"
	switch d.reason {
	case reasonClient:
		msg = "socket-proxy: forbidden: client address not allowed"
	case reasonBody:
		msg = "socket-proxy: forbidden: request bodies are not allowed"
	case reasonUpgrade:
		msg = "socket-proxy: forbidden: connection upgrades are not allowed"
	case reasonQuery:
		msg = "socket-proxy: forbidden: malformed or oversized query"
	case reasonTarget, reasonProto:
		msg = "socket-proxy: forbidden: only origin-form HTTP/1.x requests are accepted"
	case reasonPath:
		msg = "socket-proxy: forbidden: path not on the allow-list"
	}
	writeError(w, http.StatusForbidden, msg)
}

// writeError writes {"message": msg}, the Docker Engine's error body, and
// asks the server to close the connection.
func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Connection", "close")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// newUpstreamRequest builds the request sent to the Engine. It carries none
// of the client's headers: nothing on the allow-list reads any, and a
// request made only of method, path and query can be shared safely.
func (p *Proxy) newUpstreamRequest(ctx context.Context, method, target string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.base+target, nil)
	if err != nil {
		return nil, fmt.Errorf("socketproxy: upstream request: %w", err)
	}
	req.Header.Set("User-Agent", "swarmgate-socket-proxy")
	return req, nil
}

// hopHeaders are the hop-by-hop response headers (RFC 9110 section 7.6.1)
// that are not copied to the client.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// endToEnd returns a copy of h without hop-by-hop headers.
func endToEnd(h http.Header) http.Header {
	out := h.Clone()
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		out.Del(name)
	}
	return out
}

// serveStream forwards one request with its own upstream request and
// streams the response, flushing as bytes arrive. It serves /events
// subscriptions that cannot be shared (since/until).
func (p *Proxy) serveStream(w http.ResponseWriter, r *http.Request, e Endpoint, target string) {
	rc := http.NewResponseController(w)
	// Streams run as long as the client and the Engine want; each write is
	// bounded below instead.
	rc.SetWriteDeadline(time.Time{})
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(p.streams, cancel)()
	req, err := p.newUpstreamRequest(ctx, r.Method, target)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	p.m.upstream.WithLabelValues(string(e)).Inc()
	resp, err := p.client.Do(req)
	if err != nil {
		p.upstreamFailed(w, r, err)
		return
	}
	defer resp.Body.Close()
	p.m.eventStreams.Inc()
	defer p.m.eventStreams.Dec()
	p.m.subscribers.Inc()
	defer p.m.subscribers.Dec()
	copyHeader(w.Header(), endToEnd(resp.Header))
	w.WriteHeader(resp.StatusCode)
	rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			rc.SetWriteDeadline(time.Now().Add(p.opt.EventWriteTimeout))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush()
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && r.Context().Err() == nil {
				// Tell the client the stream broke rather than ended.
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client left
	}
	p.log.Error("upstream failed", zap.String("method", r.Method),
		zap.String("path", truncate(r.RequestURI, 256)), zap.Error(err))
	writeError(w, http.StatusBadGateway, "socket-proxy: Docker Engine API unreachable")
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append(dst[k][:0:0], vv...)
	}
}
