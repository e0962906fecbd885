// Package edge owns a running edge: it merges the route sources, builds one
// immutable Snapshot (HTTP table, L4 table, certificate and ACME host sets,
// admin listing), swaps it in atomically and hands each part to its consumer.
//
// Run wires the listeners, the proxy, the L4 engine and TLS around that
// snapshot, gates traffic on the first table and drains everything on
// shutdown; cmd/swarmgate only parses flags and calls it.
package edge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/internal/opt"
	"github.com/swarmgate/swarmgate/l4"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// DefaultBackendDrain is how long tunnels, streams and TCP connections to a
// task that left rotation may go on when Core.BackendDrain is zero.
const DefaultBackendDrain = 30 * time.Second

// Core is what a Snapshot is handed to. Proxy and Pool are required; the
// proxy must have been built on Pool.
type Core struct {
	Proxy *proxy.Proxy
	Pool  *balancer.Pool
	// L4 serves the snapshot's TCP and SNI passthrough routes. If nil, those
	// routes are built but not served.
	L4 *l4.Engine
	// Logger receives table logs. If nil, nothing is logged.
	Logger *zap.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// BackendDrain is how long long-lived exchanges with an endpoint that
	// left rotation may go on before they are ended cleanly. If zero,
	// DefaultBackendDrain.
	BackendDrain time.Duration
	// Registerer receives the table build and change-to-table histograms.
	// If nil, they are not exported.
	Registerer prometheus.Registerer
}

// Edge holds the snapshot in force and applies new ones. Its methods are
// safe for concurrent use; the request path only loads the snapshot.
type Edge struct {
	c    Core
	m    *edgeMetrics
	snap atomic.Pointer[Snapshot]
	mu   sync.Mutex // serialises Apply and guards drains; never taken on the request path
	// drains are the pending backend drain deadlines; Close stops them.
	drains map[*time.Timer]bool
	closed bool
	// running counts drain deadlines scheduled and not yet done or stopped.
	running sync.WaitGroup
	// refs counts, for every endpoint address, the routes of the snapshot
	// in force that use it; an endpoint leaves the pool when its count
	// drops to zero. Guarded by mu.
	refs map[string]int
	// l4served reports that the L4 engine was given a table: a snapshot
	// that keeps its predecessor's L4 table need not give it again.
	l4served bool
}

// New returns an Edge serving an empty snapshot.
func New(c Core) *Edge {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	opt.Positive(&c.BackendDrain, DefaultBackendDrain)
	e := &Edge{c: c, m: newEdgeMetrics(c.Registerer), drains: map[*time.Timer]bool{}, refs: map[string]int{}}
	e.snap.Store(build(route.Config{}, c.Proxy, c.Pool, nil, c.Now()))
	return e
}

// Snapshot returns the snapshot in force.
func (e *Edge) Snapshot() *Snapshot { return e.snap.Load() }

// TLSName is the proxy's Options.TLSName: the TLS settings of host under
// the snapshot in force.
func (e *Edge) TLSName(host string) string { return e.snap.Load().tlsName(host) }

// Apply builds a snapshot from cfg and puts it in force: one atomic swap,
// then each part to its consumer. Endpoints no route uses any more leave the
// pool; their idle upstream connections are closed, and their tunnels,
// streams and TCP connections are ended at the backend drain deadline
// unless they are back in rotation by then. Routes that cannot be built are
// logged and left out; the rest is unaffected.
func (e *Edge) Apply(cfg route.Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	start := e.c.Now()
	prev := e.snap.Load()
	s := build(cfg, e.c.Proxy, e.c.Pool, prev, start)
	e.snap.Store(s)
	e.c.Proxy.Install(s.HTTP)
	if e.c.L4 != nil && (!s.l4kept || !e.l4served) {
		e.l4served = true
		if err := e.c.L4.Update(s.L4); err != nil {
			e.c.Logger.Error("some L4 routes are not served", zap.Error(err))
		}
	}
	if !s.l4kept {
		for _, r := range s.l4rejected { // the proxy logs its own
			e.c.Logger.Warn("route rejected", zap.String("reason", r))
		}
	}
	if dropped := e.countLocked(prev, s); len(dropped) > 0 {
		e.c.Proxy.CloseIdle()
		e.drainLaterLocked(dropped)
	}
	end := e.c.Now()
	e.m.build.Observe(end.Sub(start).Seconds())
	if d, ok := e.m.clock.observe(cfg.Changed, end); ok {
		e.m.change.Observe(d.Seconds())
	}
	e.c.Logger.Info("routing table swapped",
		zap.Int("routes", len(cfg.Routes)),
		zap.Int("label_errors", len(cfg.Errors)),
		zap.Int("rejected", len(s.rejected)),
		zap.Duration("build", end.Sub(start)))
}

// countLocked updates the endpoint reference counts from prev to s and
// takes the endpoints no route uses any more out of the pool, returning
// them. It costs what changed when s was derived from prev, and a count of
// every route otherwise. e.mu is held.
func (e *Edge) countLocked(prev, s *Snapshot) []string {
	var zero []string
	dec := func(a string) {
		if e.refs[a]--; e.refs[a] <= 0 {
			zero = append(zero, a)
		}
	}
	inc := func(a string) { e.refs[a]++ }
	if !s.HTTP.DiffEndpoints(prev.HTTP, inc, dec) {
		clear(e.refs)
		s.countEndpoints(e.refs)
		return e.c.Pool.Prune(func(a string) bool { return e.refs[a] > 0 })
	}
	if !s.l4kept {
		s.countL4(inc)
		prev.countL4(dec)
	}
	var gone []string
	for _, a := range zero {
		if n, ok := e.refs[a]; ok && n <= 0 {
			delete(e.refs, a)
			gone = append(gone, a)
		}
	}
	return e.c.Pool.Remove(gone)
}

// drainLaterLocked schedules the backend drain deadline of addrs. e.mu is held.
func (e *Edge) drainLaterLocked(addrs []string) {
	if e.closed {
		return
	}
	var t *time.Timer
	e.running.Add(1)
	t = time.AfterFunc(e.c.BackendDrain, func() {
		defer e.running.Done()
		e.mu.Lock()
		delete(e.drains, t)
		closed := e.closed
		e.mu.Unlock()
		if !closed {
			e.endGone(addrs)
		}
	})
	e.drains[t] = true
}

// Close stops the pending backend drain deadlines (what they would end is
// ended by the listeners' own shutdown) and waits for one that is running.
func (e *Edge) Close() {
	e.mu.Lock()
	e.closed = true
	for t := range e.drains {
		if t.Stop() {
			e.running.Done()
		}
	}
	clear(e.drains)
	e.mu.Unlock()
	e.running.Wait()
}

// endGone ends the long-lived exchanges with those of addrs that are still
// out of rotation: the backend drain deadline has passed.
func (e *Edge) endGone(addrs []string) {
	gone := make(map[string]bool)
	e.mu.Lock()
	for _, a := range addrs {
		if e.refs[a] == 0 {
			gone[a] = true
		}
	}
	e.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	if n := e.c.Proxy.EndLongLived(gone); n > 0 {
		e.c.Logger.Info("backend drain deadline passed; tunnels and streams ended", zap.Int("exchanges", n))
	}
	if e.c.L4 != nil {
		list := make([]string, 0, len(gone))
		for a := range gone {
			list = append(list, a)
		}
		if n := e.c.L4.EndEndpoints(list); n > 0 {
			e.c.Logger.Info("backend drain deadline passed; TCP connections ended", zap.Int("connections", n))
		}
	}
}

// routeRecycler is a source that may make a Config's routes by rewriting
// those of the Config before last (control.Client.RecycleRoutes), which
// the edge allows: it reads a source's Config while it is the source's
// latest, and the one before only while it applies the next (the table
// builders compare the two, and a Snapshot keeps pointers into its
// Config's routes for the next build only). Nothing reads a Config's
// routes once it is older than that: a Snapshot's listing (Describe) is
// made from its tables, which copy what they keep of a route.
type routeRecycler interface{ RecycleRoutes() }

// merger keeps the latest Config of every source and applies their merge.
type merger struct {
	mu      sync.Mutex // serialises merges; never taken on the request path
	latest  []route.Config
	got     []bool
	cluster string
	edge    *Edge
	ready   chan struct{} // closed once every source has delivered a Config
	onReady func()        // called once, when ready is closed; may be nil
}

func newMerger(n int, cluster string, e *Edge) *merger {
	return &merger{latest: make([]route.Config, n), got: make([]bool, n), cluster: cluster,
		edge: e, ready: make(chan struct{})}
}

// update returns the update callback of source i.
func (m *merger) update(i int) func(route.Config) {
	return func(c route.Config) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.latest[i], m.got[i] = c, true
		m.edge.Apply(Merge(m.cluster, m.latest...))
		for _, ok := range m.got {
			if !ok {
				return
			}
		}
		select {
		case <-m.ready:
		default:
			if m.onReady != nil {
				m.onReady()
			}
			close(m.ready)
		}
	}
}
