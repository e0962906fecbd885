// Package l4 is the edge's Layer 4 engine: TCP port routes spliced to their
// tasks, and TLS connections on :443 routed by SNI without termination.
//
// An Engine holds an immutable Table swapped atomically by Update; it opens and
// closes the TCP listeners the table asks for, and wraps the :443 listener so
// that passthrough names are spliced and everything else reaches the caller's
// tls.Server. Bytes are copied between raw *net.TCPConn values so Linux moves
// them with splice(2).
package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/internal/opt"
	"github.com/swarmgate/swarmgate/router"
)

// Defaults for zero Options and Route fields.
const (
	DefaultIdleTimeout   = time.Hour // databases hold idle pooled connections for long
	DefaultDialTimeout   = 5 * time.Second
	DefaultPeekTimeout   = 5 * time.Second
	DefaultMaxHelloBytes = 16 << 10
)

// Route is one L4 route: where connections for a TCP port or an SNI name go.
type Route struct {
	ID, Service string
	Endpoints   []*balancer.Endpoint
	Policy      balancer.Policy
	// ProxyProtocol is 0 (off), 1 or 2: the PROXY header version sent to the
	// backend before any client byte.
	ProxyProtocol int
	// IdleTimeout closes a connection after this long without a byte in
	// either direction. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Table is an L4 routing snapshot. TCP maps an edge port to its route; SNI
// maps TLS server names to passthrough routes: exact names and "*.example.org"
// wildcards (subdomains of any depth, not the apex; the longest suffix wins),
// matched without regard to case. Update copies the maps, so the caller may
// reuse them afterwards.
type Table struct {
	TCP map[int]*Route
	SNI map[string]*Route
}

// Options configure an Engine. The zero value of each field is usable.
type Options struct {
	Logger     *zap.Logger           // nil: no logging
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	Now        func() time.Time      // nil: time.Now; the clock given to the balancer

	DialTimeout time.Duration // per backend connect attempt; 0: DefaultDialTimeout
	ListenHost  string        // address TCP route ports listen on; "": all interfaces

	// TrustedProxies are the peers (external load balancers) that must start
	// every connection with a PROXY v1 or v2 header, on every listener the
	// engine serves. The header's source address becomes the connection's
	// RemoteAddr. Other peers' bytes pass as they are.
	TrustedProxies []netip.Prefix

	// PeekTimeout bounds the wait for a PROXY header and a ClientHello; 0:
	// DefaultPeekTimeout. MaxHelloBytes bounds the bytes buffered to find the
	// SNI (records included); 0: DefaultMaxHelloBytes.
	PeekTimeout   time.Duration
	MaxHelloBytes int
}

// Engine serves L4 routes. Its methods are safe for concurrent use.
type Engine struct {
	log     *zap.Logger
	now     func() time.Time
	dialer  net.Dialer
	opts    Options
	metrics *metrics

	table atomic.Pointer[snapshot] // the request path loads it once per connection

	// mu guards listeners, wrapped and closed. Update, Close and
	// TLSListener take it; connections never do.
	mu        sync.Mutex
	listeners map[int]*portListener
	wrapped   []*wrapListener
	closed    bool

	loops    sync.WaitGroup // accept loops
	sessions sessionSet
}

// New returns an Engine with an empty table.
func New(o Options) *Engine {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	opt.Positive(&o.DialTimeout, DefaultDialTimeout)
	opt.Positive(&o.PeekTimeout, DefaultPeekTimeout)
	opt.Positive(&o.MaxHelloBytes, DefaultMaxHelloBytes)
	e := &Engine{
		log:       o.Logger,
		now:       o.Now,
		dialer:    net.Dialer{Timeout: o.DialTimeout},
		opts:      o,
		metrics:   newMetrics(o.Registerer),
		listeners: make(map[int]*portListener),
	}
	e.sessions.m = make(map[*session]struct{})
	e.table.Store(&snapshot{})
	return e
}

// Update swaps in t. It opens a listener for every newly routed TCP port and
// closes those of ports no longer routed; connections already established stay
// spliced to their endpoint until they end or Drain closes them. A port that
// cannot be bound is logged and named in the returned error; the rest of the
// table is in force all the same, and the next Update tries the port again.
// Invalid SNI names are skipped and reported the same way.
func (e *Engine) Update(t *Table) error {
	snap, errs := newSnapshot(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("l4: update: engine closed")
	}
	// Store first: a connection accepted on a port that is about to close
	// finds no route and is closed, rather than using a stale one.
	e.table.Store(snap)
	for port, pl := range e.listeners {
		if _, ok := snap.tcp[port]; !ok {
			pl.ln.Close()
			delete(e.listeners, port)
			e.log.Info("l4: port closed", zap.Int("port", port))
		}
	}
	ports := make([]int, 0, len(snap.tcp))
	for port := range snap.tcp {
		ports = append(ports, port)
	}
	slices.Sort(ports)
	for _, port := range ports {
		if _, ok := e.listeners[port]; ok {
			continue
		}
		addr := net.JoinHostPort(e.opts.ListenHost, strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			e.log.Error("l4: cannot listen", zap.Int("port", port), zap.Error(err))
			errs = append(errs, fmt.Errorf("l4: listen on port %d: %w", port, err))
			continue
		}
		pl := &portListener{port: port, ln: ln}
		e.listeners[port] = pl
		e.loops.Add(1)
		go e.acceptPort(pl)
		e.log.Info("l4: port open", zap.Int("port", port), zap.Stringer("addr", ln.Addr()))
	}
	return errors.Join(errs...)
}

// Addr returns the address a routed TCP port listens on (useful when the
// table asks for port 0 in tests), or nil when the port has no listener.
func (e *Engine) Addr(port int) net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if pl := e.listeners[port]; pl != nil {
		return pl.ln.Addr()
	}
	return nil
}

// Close stops accepting: it closes every TCP route listener and every
// listener wrapped by TLSListener or ProxyListener, and waits for their accept
// loops to return. Established connections are left to Drain.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	var errs []error
	for port, pl := range e.listeners {
		if err := pl.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("l4: close port %d: %w", port, err))
		}
		delete(e.listeners, port)
	}
	wrapped := e.wrapped
	e.wrapped = nil
	e.mu.Unlock()
	for _, w := range wrapped {
		w.Close()
		w.giveUp()
	}
	e.loops.Wait()
	return errors.Join(errs...)
}

// Drain waits for every connection the engine is splicing (or still peeking
// at) to end; when ctx is done first, it closes the rest and waits for their
// goroutines. Call it after Close, or new connections keep it waiting.
// Connections handed to the caller by TLSListener are the caller's to drain.
func (e *Engine) Drain(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		e.sessions.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	e.sessions.closeAll()
	<-done
}

// snapshot is the normalised, immutable form of a Table. SNI names are a
// router table (host part only): the router is the one authority on host
// syntax and on exact-then-longest-wildcard matching.
type snapshot struct {
	tcp map[int]*Route
	sni *router.Table[*Route]
}

func newSnapshot(t *Table) (*snapshot, []error) {
	s := &snapshot{tcp: make(map[int]*Route)}
	b := router.NewBuilder[*Route]()
	if t == nil {
		s.sni = b.Build()
		return s, nil
	}
	var errs []error
	for port, r := range t.TCP {
		if port < 0 || port > 65535 || r == nil {
			errs = append(errs, fmt.Errorf("l4: tcp port %d: invalid route", port))
			continue
		}
		s.tcp[port] = r
	}
	names := make([]string, 0, len(t.SNI))
	for name := range t.SNI {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic errors
	for _, name := range names {
		r := t.SNI[name]
		if r == nil || name == "" {
			errs = append(errs, fmt.Errorf("l4: sni %q: invalid name or route", name))
			continue
		}
		if err := b.Insert(name, "/", 0, r); err != nil {
			errs = append(errs, fmt.Errorf("l4: sni %q: %w", name, err))
		}
	}
	s.sni = b.Build()
	return s, errs
}

// lookupSNI finds the passthrough route of a server name: the exact name,
// then wildcards from the longest suffix to the shortest.
func (s *snapshot) lookupSNI(name string) *Route {
	if name == "" {
		return nil
	}
	r, _, _ := s.sni.Lookup(name, "/")
	return r
}

// portListener is the listener of one TCP route port.
type portListener struct {
	port int
	ln   net.Listener
}

func (e *Engine) acceptPort(pl *portListener) {
	defer e.loops.Done()
	acceptLoop(pl.ln, e.log, func(c net.Conn) {
		s := e.sessions.add(c)
		go func() {
			defer e.sessions.done(s)
			in, ok := e.accept(c)
			if !ok {
				return
			}
			r := e.table.Load().tcp[pl.port]
			if r == nil {
				return // the port was unrouted while this connection arrived
			}
			e.serve(s, in, r)
		}()
	})
}

// acceptLoop calls handle for each accepted connection until ln is closed,
// backing off on temporary errors (file descriptors exhausted) like
// net/http.Server does, rather than spinning.
func acceptLoop(ln net.Listener, log *zap.Logger, handle func(net.Conn)) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				log.Warn("l4: accept", zap.Stringer("addr", ln.Addr()), zap.Error(err), zap.Duration("retry_in", delay))
				time.Sleep(delay)
				continue
			}
			log.Error("l4: accept stopped", zap.Stringer("addr", ln.Addr()), zap.Error(err))
			return
		}
		delay = 0
		handle(c)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// EndEndpoints ends, without a reset, the connections spliced to any of
// addrs ("host:port"): the backend drain deadline of tasks that left
// rotation. It returns how many it ended.
func (e *Engine) EndEndpoints(addrs []string) int {
	set := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		set[a] = true
	}
	return e.sessions.endpointsGone(set)
}
