package edge

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sgmetrics "github.com/swarmgate/swarmgate/internal/metrics"
)

// edgeMetrics are the series of the snapshot's owner: how long a table
// takes to build, and how long a change takes from the source's backend to
// the table in force.
type edgeMetrics struct {
	build  prometheus.Histogram
	change prometheus.Histogram
	clock  changeClock // guarded by Edge.mu
}

func newEdgeMetrics(reg prometheus.Registerer) *edgeMetrics {
	return &edgeMetrics{
		build: sgmetrics.NewHistogram(reg, "swarmgate_table_build_seconds",
			"Time to build a snapshot from the merged Config and put it in force (HTTP and L4 tables, endpoint pruning).",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}),
		change: sgmetrics.NewHistogram(reg, "swarmgate_change_to_table_seconds",
			"From when Swarm reported a change (an event, or the timestamp of the task a poll found, as the control plane or the edge's own Docker source saw it) to when the edge's table with it was in force. Across hosts clock skew counts.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}),
	}
}

// changeClock turns the Changed stamps of the merged Configs into
// change-to-table samples. The merged stamp is the latest of the sources'
// (see Merge): it advances when a source brings a new change, and stays when
// a source without stamps (a routes file) or a resync brings none. The first
// stamp is the initial state, not a change: it is not observed.
type changeClock struct {
	last time.Time
}

// observe returns the latency to record for a Config stamped changed and in
// force at now, and whether to record it.
func (c *changeClock) observe(changed, now time.Time) (time.Duration, bool) {
	if changed.IsZero() || !changed.After(c.last) {
		return 0, false
	}
	first := c.last.IsZero()
	c.last = changed
	if first {
		return 0, false
	}
	return max(now.Sub(changed), 0), true
}

// tlsMetrics count the HTTPS listener's TLS handshakes by negotiated
// version ("TLS 1.2", "TLS 1.3"; "unknown" for a handshake that failed
// before a version was agreed), over TCP and over QUIC (HTTP/3). A TCP
// connection counts once: when its first request arrives (the handshake is
// complete then), or when it closes.
type tlsMetrics struct {
	handshakes *prometheus.CounterVec // version
	errors     *prometheus.CounterVec // version
}

func newTLSMetrics(reg prometheus.Registerer) *tlsMetrics {
	return &tlsMetrics{
		handshakes: sgmetrics.NewCounterVec(reg, "swarmgate_tls_handshakes_total",
			"TLS handshakes completed on the HTTPS listener, over TCP and QUIC (HTTP/3), by negotiated version.", "version"),
		errors: sgmetrics.NewCounterVec(reg, "swarmgate_tls_handshake_errors_total",
			"TLS handshakes on the HTTPS listener, over TCP and QUIC (HTTP/3), that failed or were abandoned after the client sent something, by version (unknown: before one was agreed). Connections that close without sending a byte (TCP probes) are not counted.", "version"),
	}
}

// tlsVersion is the version label of a negotiated version.
func tlsVersion(v uint16) string {
	if v == 0 {
		return "unknown"
	}
	return tls.VersionName(v)
}

// listener returns a TLS listener over inner, like tls.NewListener, whose
// connections count their handshake.
func (m *tlsMetrics) listener(inner net.Listener, cfg *tls.Config) net.Listener {
	return &countingListener{Listener: inner, cfg: cfg, m: m}
}

// watch makes srv, which serves a listener of m, count a connection's
// handshake when its first request arrives rather than when it closes.
func (m *tlsMetrics) watch(srv *http.Server) {
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if tc, ok := c.(*tls.Conn); ok && s == http.StateActive {
			if cc, ok := tc.NetConn().(*countedConn); ok && !cc.counted.Load() {
				cc.count(m) // net/http reads a request only after the handshake
			}
		}
		if next != nil {
			next(c, s)
		}
	}
}

type countingListener struct {
	net.Listener
	cfg *tls.Config
	m   *tlsMetrics
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countedConn{Conn: c, m: l.m}
	tc := tls.Server(cc, l.cfg)
	cc.tls = tc
	// net/http needs the *tls.Conn itself to run the handshake and fill in
	// Request.TLS: the outcome is read from it.
	return tc, nil
}

// countedConn is the raw connection under one *tls.Conn. net/http closes
// every connection, those whose handshake failed included, through the
// *tls.Conn and so through its Close.
type countedConn struct {
	net.Conn
	m       *tlsMetrics
	tls     *tls.Conn
	read    atomic.Bool // the client sent at least one byte
	counted atomic.Bool
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.read.Load() {
		c.read.Store(true)
	}
	return n, err
}

func (c *countedConn) Close() error {
	// Closed first: a handshake still running on the connection fails at
	// once and releases the state that ConnectionState waits for.
	err := c.Conn.Close()
	if !c.counted.Load() && c.read.Load() { // a probe that sent nothing tried no handshake
		c.count(c.m)
	}
	return err
}

// quicHandshake counts the TLS handshake of a QUIC connection of the
// HTTP/3 listener (proxy.HTTP3Server.Handshakes) in the same series as
// the TCP ones: QUIC always runs TLS 1.3.
func (m *tlsMetrics) quicHandshake(complete bool) {
	v := tlsVersion(tls.VersionTLS13)
	if complete {
		m.handshakes.WithLabelValues(v).Inc()
	} else {
		m.errors.WithLabelValues(v).Inc()
	}
}

// count records the connection's handshake once, as it stands: complete or
// failed. It must not run while the handshake does, except after Close.
func (c *countedConn) count(m *tlsMetrics) {
	if c.counted.Swap(true) {
		return
	}
	st := c.tls.ConnectionState()
	if st.HandshakeComplete {
		m.handshakes.WithLabelValues(tlsVersion(st.Version)).Inc()
	} else {
		m.errors.WithLabelValues(tlsVersion(st.Version)).Inc()
	}
}
