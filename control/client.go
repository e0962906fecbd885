package control

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/internal/metrics"
	"github.com/swarmgate/swarmgate/internal/opt"
	"github.com/swarmgate/swarmgate/internal/sockopt"
	"github.com/swarmgate/swarmgate/route"
)

// Defaults of ClientOptions.
//
// The backoff is short: an edge that lost the control plane tries again at
// least twice a second, so a replica that comes back (or a partition that
// heals) is in use again within half a second plus a connect. A refused or
// unanswered connect costs the control plane next to nothing, even from
// thousands of edges, and the jitter spreads them.
const (
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 500 * time.Millisecond
	DefaultIdleTimeout = 3 * DefaultHeartbeat
	DefaultMaxFrame    = 64 << 20
)

// ClientOptions configure a Client. Addrs is required.
type ClientOptions struct {
	// Addrs are the control plane's replicas (edge --control):
	// "tcp://host:7070" is HTTP/2 in clear text, or over TLS when TLS is set;
	// "http://" and "https://" URLs are taken as they are. The client stays
	// on one while it works and tries the next when it fails.
	Addrs []string
	// TLS is the client TLS configuration (see ClientTLSConfig). If nil,
	// tcp:// addresses speak cleartext HTTP/2 (h2c).
	TLS *tls.Config
	// MinBackoff and MaxBackoff bound the wait between failed connections,
	// doubled at each failure, with jitter. If zero, DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout: a stream that carries no frame (heartbeats included)
	// for this long is given up and another connection made. It must exceed
	// the servers' Heartbeat. If zero, DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxFrame is the largest frame accepted (a snapshot of every route).
	// If zero, DefaultMaxFrame.
	MaxFrame int
	// Transport carries the requests. If nil, one is built from TLS, with
	// connect, handshake and header timeouts, and HTTP/2 pings.
	Transport http.RoundTripper
	// Logger receives connection changes. If nil, nothing is logged.
	Logger *zap.Logger
	// Registerer receives the client's metrics. If nil, they are not exported.
	Registerer prometheus.Registerer
	// Now is the clock of LastFrame and of the change-to-table latency.
	// If nil, time.Now.
	Now func() time.Time
}

// Client is the edge's route.Source for the control plane's stream. It
// applies the snapshot and the deltas it receives to its own copy of the
// state, checks the result against the version the server announced, and
// calls update with the whole Config. While no replica answers it keeps
// quiet (the last Config stays in force) and reconnects with backoff; it
// resumes from its version, so that a reconnection costs a delta, not a
// snapshot, when the replica still has the history.
type Client struct {
	o    ClientOptions
	urls []string // stream URLs, one per address
	http *http.Client
	own  *http.Transport // the transport the client built, nil if given
	log  *zap.Logger
	m    *clientMetrics

	// Only Run's goroutine touches the state. version is the state's;
	// ClientState.Version is the Config's in force, which is kept when
	// the state is dropped.
	state   *clientState
	version string
	logged  map[string]bool // label errors already logged (route.LabelError.Error())
	// recycle is set by RecycleRoutes; Run's goroutine reads it.
	recycle atomic.Bool

	mu sync.Mutex // guards st
	st ClientState
}

// ClientState is what the edge's /readyz and status page show of the source.
type ClientState struct {
	// Server is the address of the replica in use, or last tried.
	Server string `json:"server"`
	// Connected: a stream is open and in step with the server.
	Connected bool `json:"connected"`
	// Synced: a Config has been delivered. It stays true while the
	// control plane is away: the last Config is in force.
	Synced bool `json:"synced"`
	// Version of the Config in force, "" before the first.
	Version string `json:"version"`
	// Changed is when the change that made Version was reported.
	Changed time.Time `json:"changed,omitzero"`
	// LastFrame is when the last frame (heartbeat included) arrived:
	// the last moment the client knew it was in sync.
	LastFrame time.Time `json:"last_frame,omitzero"`
	// LastError is why the last connection failed or ended; "" if none did.
	LastError string `json:"last_error,omitempty"`
	// Routes and LabelErrors count the Config in force.
	Routes      int `json:"routes"`
	LabelErrors int `json:"label_errors"`
}

var _ route.Reporter = (*Client)(nil)

// NewClient returns a Client. It does not connect: Run does.
func NewClient(o ClientOptions) (*Client, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("control: client: no control plane address")
	}
	opt.Positive(&o.MinBackoff, DefaultMinBackoff)
	opt.Positive(&o.MaxBackoff, DefaultMaxBackoff)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	opt.Positive(&o.IdleTimeout, DefaultIdleTimeout)
	opt.Positive(&o.MaxFrame, DefaultMaxFrame)
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Client{o: o, log: o.Logger, state: newClientState(false)}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	for _, a := range o.Addrs {
		u, err := streamURL(a, o.TLS != nil)
		if err != nil {
			return nil, err
		}
		c.urls = append(c.urls, u)
	}
	rt := o.Transport
	if rt == nil {
		c.own = newTransport(o.TLS)
		rt = c.own
	}
	c.http = &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("control: client: redirects are not followed")
	}}
	c.m = newClientMetrics(o.Registerer)
	c.log = c.log.With(zap.String("source", "control"))
	return c, nil
}

// RecycleRoutes declares that Run's update callback reads no Config's
// Routes, and keeps no pointer into them, once it has returned from the
// Config after that one: it holds the latest Config and reads the one
// before only while it takes the next (an edge, whose table builder
// compares the two). The Client then makes a Config's routes by patching
// in place, for what changed since, the routes of the Config before last
// instead of copying the last one's: a delta costs what it changed, not a
// copy of every route (4.3 MB at 10,000 routes) and the garbage
// collection it brings. The elements of the slice are rewritten, never
// what they point to (hosts, endpoints, policies stay as they were).
// Call it before Run; it cannot be undone.
func (c *Client) RecycleRoutes() { c.recycle.Store(true) }

// streamURL turns an address into the stream's URL.
func streamURL(addr string, tls bool) (string, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("control: client: address %q: %w", addr, err)
	}
	switch u.Scheme {
	case "tcp":
		u.Scheme = "http"
		if tls {
			u.Scheme = "https"
		}
	case "http", "https":
	default:
		return "", fmt.Errorf("control: client: address %q: want tcp://host:port, http:// or https://", addr)
	}
	if u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("control: client: address %q: want host:port", addr)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("control: client: address %q: no path, query or user", addr)
	}
	u.Path = StreamPath
	return u.String(), nil
}

// connectTimeout bounds a connect to a replica: on an overlay network one
// takes well under a millisecond, and a SYN that got no answer is better sent
// again now (a new connect) than at TCP's retransmission backoff.
// userTimeout fails a connection whose data went unacknowledged that long.
const (
	connectTimeout = time.Second
	dialWave       = 250 * time.Millisecond
	userTimeout    = 3 * time.Second
)

// dialAny connects to addr ("host:port"), trying every address the host
// resolves to at once and keeping the first that answers. The control
// service's name resolves to its tasks (dnsrr); for seconds after a replica
// died, Swarm's DNS still lists it, and a dial that tried it first would
// spend its timeout there before the replica that took its place. Until an
// address answers or connectTimeout has passed, the name is resolved again
// and every address dialled again each dialWave while the last ones hang
// or the name does not resolve (when every address it gives is refused,
// the dial returns at once, for the caller's next address): a SYN that a partition
// dropped is sent again within dialWave of the partition healing, not at
// TCP's next retransmission (1 s, then 3 s after the first), and a replica
// that took a dead one's place (its address new in this node's DNS) is
// dialled within dialWave of being there.
func dialAny(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	return raceDial(ctx, network, addr, net.DefaultResolver.LookupHost, d.DialContext, dialWave, connectTimeout)
}

// raceDial is dialAny with its resolver, dialer, wave and timeout given.
func raceDial(ctx context.Context, network, addr string,
	lookup func(ctx context.Context, host string) ([]string, error),
	dial func(ctx context.Context, network, addr string) (net.Conn, error),
	waveEvery, timeout time.Duration) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resolve := func() ([]string, error) { return []string{host}, nil }
	if net.ParseIP(host) == nil {
		resolve = func() ([]string, error) {
			// A wave's lookup gets a wave's time: a resolver that hangs
			// (a partitioned node's DNS) does not hold up the dials.
			lctx, lcancel := context.WithTimeout(ctx, waveEvery)
			defer lcancel()
			return lookup(lctx, host)
		}
	}
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, 16)
	pending := 0
	var errs []error
	var ips []string
	resolved := false // the last wave's lookup answered
	wave := func() {
		// The last answer stands when a lookup fails: the addresses it
		// gave may still be the ones that come back.
		again, err := resolve()
		resolved = err == nil && len(again) > 0
		if err != nil {
			errs = append(errs, err)
		} else if len(again) > 0 {
			ips = again
		}
		for _, ip := range ips {
			pending++
			go func() {
				c, err := dial(ctx, network, net.JoinHostPort(ip, port))
				results <- result{c, err}
			}()
		}
	}
	wave()
	next := time.NewTicker(waveEvery)
	defer next.Stop()
	for {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				cancel()
				// The others: close any that connected meanwhile.
				go func(n int) {
					for range n {
						if r := <-results; r.c != nil {
							r.c.Close()
						}
					}
				}(pending)
				return r.c, nil
			}
			errs = append(errs, r.err)
			if pending == 0 && resolved {
				// Every address the name gives failed outright (refused,
				// unreachable): the caller tries its next address now.
				return nil, lastErrors(errs)
			}
		case <-next.C:
			if ctx.Err() == nil {
				wave()
			}
		case <-ctx.Done():
			for ; pending > 0; pending-- {
				if r := <-results; r.c != nil { // connected as the time ran out
					cancel()
					go func(n int) {
						for range n {
							if r := <-results; r.c != nil {
								r.c.Close()
							}
						}
					}(pending - 1)
					return r.c, nil
				}
			}
			return nil, lastErrors(errs)
		}
	}
}

// lastErrors joins the distinct errors of errs, the latest first: what a
// dial that gave up ran into, without one line per wave.
func lastErrors(errs []error) error {
	var out []error
	seen := map[string]bool{}
	for i := len(errs) - 1; i >= 0 && len(out) < 4; i-- {
		if m := errs[i].Error(); !seen[m] {
			seen[m] = true
			out = append(out, errs[i])
		}
	}
	if len(out) == 0 {
		return errors.New("no address answered")
	}
	return errors.Join(out...)
}

func newTransport(tlsConf *tls.Config) *http.Transport {
	p := new(http.Protocols)
	if tlsConf == nil {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP2(true)
		tlsConf = tlsConf.Clone()
	}
	return &http.Transport{
		Protocols:       p,
		TLSClientConfig: tlsConf,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialAny(ctx, network, addr)
			if err == nil {
				sockopt.SetTCPUserTimeout(c, userTimeout)
			}
			return c, err
		},
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  10 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
		IdleConnTimeout:        time.Minute,
		HTTP2: &http.HTTP2Config{
			// A ping after 2 s without a frame, and TCP_USER_TIMEOUT, find
			// a connection the network lost (a partition) within about
			// 5 s even mid-frame; the next connect then starts afresh
			// instead of waiting on TCP's retransmission backoff, which
			// after a partition of a few seconds waits seconds more.
			SendPingTimeout: 2 * time.Second,
			PingTimeout:     3 * time.Second,
			// A stuck edge buffers this much of the stream, not the 4 MiB default.
			MaxReceiveBufferPerStream: 1 << 20,
		},
	}
}

// Name identifies the source in logs.
func (c *Client) Name() string { return "control:" + strings.Join(c.o.Addrs, ",") }

// State returns the client's state.
func (c *Client) State() ClientState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Status reports the client's state as a route.Reporter.
func (c *Client) Status() route.SourceStatus {
	st := c.State()
	return route.SourceStatus{Connected: st.Connected, Synced: st.Synced, Detail: st}
}

func (c *Client) setState(f func(*ClientState)) {
	c.mu.Lock()
	f(&c.st)
	c.mu.Unlock()
}

// Run follows the stream until ctx is done, then returns nil. It calls
// update with the whole Config after the first snapshot and after every
// frame that changes it; a reconnection that finds nothing changed calls
// nothing. update runs on Run's goroutine: while it runs, the stream waits.
func (c *Client) Run(ctx context.Context, update func(route.Config)) error {
	if c.own != nil {
		defer c.own.CloseIdleConnections()
	}
	backoff := c.o.MinBackoff
	var downSince time.Time
	for i := 0; ; i = (i + 1) % len(c.urls) {
		addr := c.o.Addrs[i]
		c.setState(func(s *ClientState) { s.Server = addr })
		progressed, err := c.session(ctx, i, update, func() {
			if !downSince.IsZero() {
				c.log.Info("control plane reachable again", zap.String("server", addr),
					zap.Duration("outage", c.o.Now().Sub(downSince).Round(time.Millisecond)))
				downSince = time.Time{}
			}
		})
		c.m.connected.Set(0)
		if ctx.Err() != nil {
			c.setState(func(s *ClientState) { s.Connected = false })
			return nil
		}
		c.setState(func(s *ClientState) { s.Connected, s.LastError = false, err.Error() })
		c.m.reconnects.Inc()
		if progressed {
			backoff = c.o.MinBackoff
		}
		if downSince.IsZero() {
			downSince = c.o.Now()
			c.log.Warn("control plane unreachable; keeping the last routing table and reconnecting",
				zap.String("server", addr), zap.Error(err))
		} else {
			c.log.Debug("control plane still unreachable", zap.String("server", addr), zap.Error(err), zap.Duration("retry_in", backoff))
		}
		// Jitter: edges that lost the same replica do not all come back at once.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if !progressed {
			backoff = min(2*backoff, c.o.MaxBackoff)
		}
	}
}

// errIdle ends a stream that carried nothing for IdleTimeout.
var errIdle = errors.New("control: no frame within the idle timeout")

// session opens one stream to replica i and applies its frames until it
// fails. progressed reports whether a frame was applied (the replica
// works: the next attempt starts over from the shortest backoff).
func (c *Client) session(ctx context.Context, i int, update func(route.Config), connected func()) (progressed bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := c.urls[i]
	if c.version != "" {
		u += "?version=" + c.version
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("control: client: %w", err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("control: %s: %w", c.o.Addrs[i], err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("control: %s: %s: %s", c.o.Addrs[i], resp.Status, strings.TrimSpace(string(msg)))
	}
	idle := time.AfterFunc(c.o.IdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()

	fr := newFrameReader(resp.Body, c.o.MaxFrame)
	for {
		line, err := fr.next()
		if err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errIdle) {
				err = cause
			} else if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the server ended the stream (shut down, or dropped a slow edge)
			}
			return progressed, fmt.Errorf("control: %s: stream: %w", c.o.Addrs[i], err)
		}
		idle.Reset(c.o.IdleTimeout)
		c.m.bytes.Add(float64(len(line) + 1))
		kind, err := c.apply(line, update)
		if err != nil {
			// Out of step: the state is not trusted any more. The next
			// connection asks for a snapshot; the edge keeps the last
			// Config until it comes.
			c.state, c.version = newClientState(c.recycle.Load()), ""
			return progressed, fmt.Errorf("control: %s: %w", c.o.Addrs[i], err)
		}
		c.m.frames.WithLabelValues(kind).Inc()
		now := c.o.Now()
		c.m.lastFrame.Set(float64(now.UnixNano()) / 1e9)
		if !progressed {
			progressed = true
			c.m.connected.Set(1)
			connected()
		}
		c.setState(func(s *ClientState) { s.Connected, s.LastFrame, s.LastError = true, now, "" })
	}
}

// errTruncated ends a stream cut in the middle of a frame.
var errTruncated = errors.New("control: stream ended inside a frame")

// frameBuffer is the read buffer of a stream: a frame up to this size (a
// delta, a ping) is read in place; a longer one (a snapshot: 3.9 MB at
// 10,000 routes) is assembled in a buffer of its own, which is dropped
// once the frame has been applied rather than held for the stream's life.
const frameBuffer = 64 << 10

// frameReader splits a stream into frames: complete lines only, the piece
// of a frame that a cut stream ends with being errTruncated.
type frameReader struct {
	r   *bufio.Reader
	max int    // the longest frame, without its newline
	big []byte // the last frame longer than the buffer
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, frameBuffer), max: max}
}

// next returns the next frame, without its newline, valid until the next
// call; io.EOF when the stream ended between two frames.
func (f *frameReader) next() ([]byte, error) {
	f.big = nil // the frame before has been applied
	line, err := f.r.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(f.big)+len(line) > f.max+1 {
			return nil, fmt.Errorf("frame over %d bytes", f.max)
		}
		f.big = append(f.big, line...)
		line, err = f.r.ReadSlice('\n')
	}
	if f.big != nil {
		if len(f.big)+len(line) > f.max+1 {
			return nil, fmt.Errorf("frame over %d bytes", f.max)
		}
		line = append(f.big, line...)
		f.big = line
	}
	switch {
	case err == nil:
		if len(line)-1 > f.max {
			return nil, fmt.Errorf("frame over %d bytes", f.max)
		}
		return line[:len(line)-1], nil
	case errors.Is(err, io.EOF) && len(line) > 0:
		return nil, errTruncated
	}
	return nil, err
}

// wireFrame is one frame as read.
type wireFrame struct {
	T    string                     `json:"t"`
	V    string                     `json:"v"`
	From string                     `json:"from"`
	At   time.Time                  `json:"at"`
	Set  map[string]json.RawMessage `json:"set"`
	Del  []string                   `json:"del"`
}

// apply applies one frame to the state and calls update if it changed.
func (c *Client) apply(line []byte, update func(route.Config)) (kind string, err error) {
	var f wireFrame
	if err := json.Unmarshal(line, &f); err != nil {
		return "", fmt.Errorf("bad frame: %w", err)
	}
	switch f.T {
	case "ping":
		if f.V != c.version {
			return "", fmt.Errorf("ping at version %s, but the client is at %s", f.V, c.version)
		}
		return f.T, nil
	case "snapshot":
		items := make(map[string]decoded, len(f.Set))
		if err := decodeSet(items, f.Set); err != nil {
			return "", err
		}
		c.state.reset(items)
	case "delta":
		if f.From != c.version {
			return "", fmt.Errorf("delta from version %s, but the client is at %s", f.From, c.version)
		}
		set := make(map[string]decoded, len(f.Set))
		if err := decodeSet(set, f.Set); err != nil {
			return "", err
		}
		c.state.change(set, f.Del)
	default:
		return "", fmt.Errorf("unknown frame type %q", f.T)
	}
	if got := c.state.version(); got != f.V {
		return "", fmt.Errorf("state after the %s is version %s, the server announced %s", f.T, got, f.V)
	}
	c.version = f.V
	if st := c.State(); st.Synced && st.Version == f.V {
		// A resumption that found nothing changed, or a snapshot of the
		// Config in force: nothing to rebuild.
		return f.T, nil
	}
	c.state.recycle = c.state.recycle || c.recycle.Load()
	cfg := c.state.config(f.At)
	update(cfg)
	c.logLabelErrors(cfg.Errors)
	now := c.o.Now()
	if f.T == "delta" && !f.At.IsZero() {
		// Event -> table in force, when update applies the table before it
		// returns (the edge's does). A snapshot is no change: not observed.
		c.m.latency.Observe(max(now.Sub(f.At), 0).Seconds())
	}
	c.setState(func(s *ClientState) {
		s.Synced, s.Version, s.Changed = true, f.V, f.At
		s.Routes, s.LabelErrors = len(cfg.Routes), len(cfg.Errors)
	})
	return f.T, nil
}

// logLabelErrors logs each label error once, when it appears, so that an
// edge's own log names the services it skips, as it does when it watches
// the Swarm itself.
func (c *Client) logLabelErrors(errs []*route.LabelError) {
	now := make(map[string]bool, len(errs))
	for _, e := range errs {
		k := e.Error()
		now[k] = true
		if !c.logged[k] {
			c.log.Warn("service skipped: invalid label", zap.String("service", e.Service),
				zap.String("label", e.Label), zap.String("value", e.Value), zap.String("reason", e.Reason))
		}
	}
	c.logged = now
}

func decodeSet(items map[string]decoded, set map[string]json.RawMessage) error {
	for k, raw := range set {
		d, err := decodeItem(k, raw)
		if err != nil {
			return err
		}
		items[k] = d
	}
	return nil
}

// clientMetrics are the Client's Prometheus series.
type clientMetrics struct {
	connected  prometheus.Gauge
	frames     *prometheus.CounterVec // kind
	bytes      prometheus.Counter
	reconnects prometheus.Counter
	lastFrame  prometheus.Gauge
	latency    prometheus.Histogram
}

func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	return &clientMetrics{
		connected: metrics.NewGauge(reg, "swarmgate_control_client_connected",
			"1 while the stream from the control plane is open and in step."),
		frames: metrics.NewCounterVec(reg, "swarmgate_control_client_frames_total",
			"Frames received from the control plane, by kind: snapshot, delta, ping.", "kind"),
		bytes: metrics.NewCounter(reg, "swarmgate_control_client_received_bytes_total",
			"Bytes of frames received from the control plane."),
		reconnects: metrics.NewCounter(reg, "swarmgate_control_client_reconnects_total",
			"Streams from the control plane that failed or ended."),
		lastFrame: metrics.NewGauge(reg, "swarmgate_control_client_last_frame_timestamp_seconds",
			"When the last frame (heartbeat included) arrived; alert when it lags."),
		latency: metrics.NewHistogram(reg, "swarmgate_control_change_to_table_seconds",
			"From when Swarm reported a change to when the edge's table with it was in force (across hosts: clock skew counts).",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}),
	}
}
