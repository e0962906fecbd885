// Package proxy is swarmgate's HTTP data plane: it serves HTTP/1.1 and HTTP/2
// clients from an immutable routing Table that is swapped atomically, and
// forwards each request to an endpoint chosen by the balancer.
//
// It knows HTTP routes only: the edge package owns the whole snapshot (L4
// routes, certificates, endpoint lifecycle) and hands the proxy its Table.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/policy"
	"github.com/swarmgate/swarmgate/route"
)

// Options configure a Proxy. The zero value of each field is a working default.
type Options struct {
	// Logger receives error and table logs. If nil, nothing is logged.
	Logger *zap.Logger
	// AccessLog receives one entry per request. If nil, access logging is off.
	AccessLog *zap.Logger
	// Registerer receives the proxy's metrics. If nil, metrics are not exported.
	Registerer prometheus.Registerer
	// Now is the clock. If nil, time.Now. A reading with a monotonic
	// clock reading (time.Now's, or a clock that returns them) is taken for
	// the system's: the proxy then uses it for connection deadlines and
	// idle times instead of reading time.Now again. A fake clock's readings
	// (time.Unix, time.Date) have none, and deadlines use time.Now.
	Now func() time.Time
	// DialTimeout bounds connecting to an endpoint. If zero, 5s.
	DialTimeout time.Duration
	// MaxAttempts bounds the endpoints tried for one request. If zero, 3.
	MaxAttempts int
	// Pool holds endpoint state. If nil, a default pool is created.
	Pool *balancer.Pool
	// TLSName names the TLS settings (certificate) a host is served under,
	// so that a request whose Host is under other settings than its
	// connection's server name is answered 421. If nil, every host counts as
	// served under the same settings.
	TLSName func(host string) string
	// TrustedProxies are the peers whose Forwarded, X-Real-IP,
	// X-Forwarded-Port and X-Forwarded-Prefix fields are passed on; from
	// anyone else they are replaced or removed.
	TrustedProxies []netip.Prefix
	// HTTPSPort is the port clients reach the HTTPS listener on, for
	// redirects from HTTP. If zero or 443, redirects name no port.
	HTTPSPort int
	// SecretsDir is where the htpasswd files of swarmgate.auth.basic are
	// read, and the pages of swarmgate.errors.page first. If empty,
	// /run/secrets.
	SecretsDir string
	// ConfigsDir is where the pages of swarmgate.errors.page are read when
	// SecretsDir has no such file. If empty, /, where a Docker config
	// appears when it names no target.
	ConfigsDir string
	// RequestBuffer is how much of a request body is read before an
	// upstream is picked (see bufferBody). If zero, DefaultRequestBuffer;
	// negative streams every body from its first byte.
	RequestBuffer int64
}

// Proxy routes and forwards requests. It is an http.Handler.
type Proxy struct {
	table   atomic.Pointer[Table]
	pool    *balancer.Pool
	log     *zap.Logger
	access  *zap.Logger
	metrics *metrics
	now     func() time.Time
	tr      *upstreams
	maxTry  int
	tlsName func(host string) string
	trusted []netip.Prefix
	https   string // ":port" for redirects, or ""
	secrets string // SecretsDir
	configs string // ConfigsDir
	limits  *policy.Limits

	// mu serialises Install; the request path never takes it.
	mu sync.Mutex
	// checks stop the active health check of each target that has one;
	// checked counts the checks that cover each endpoint. Guarded by mu.
	checks  map[*target]context.CancelFunc
	checked map[*balancer.Endpoint]int

	// building serialises Build, which derives each table from the one in
	// force; the request path never takes it.
	building sync.Mutex
	builder  builder

	requestBuffer int64    // bytes of a request body read before an upstream is picked; 0: none
	long          longSet  // tunnels and streams, for the backend drain and shutdown
	budgets       sync.Map // route ID -> *retryBudget, kept across tables
}

// New returns a Proxy serving an empty table (every request gets 404) until
// the first Update.
func New(o Options) *Proxy {
	p := &Proxy{
		pool:    o.Pool,
		log:     o.Logger,
		access:  o.AccessLog,
		now:     o.Now,
		maxTry:  o.MaxAttempts,
		tlsName: o.TLSName,
		trusted: o.TrustedProxies,
		secrets: o.SecretsDir,
		configs: o.ConfigsDir,
		limits:  policy.NewLimits(),
	}
	switch { // a negative RequestBuffer leaves it 0: no buffering
	case o.RequestBuffer == 0:
		p.requestBuffer = DefaultRequestBuffer
	case o.RequestBuffer > 0:
		p.requestBuffer = o.RequestBuffer
	}
	if o.HTTPSPort != 0 && o.HTTPSPort != 443 {
		p.https = ":" + strconv.Itoa(o.HTTPSPort)
	}
	if p.secrets == "" {
		p.secrets = "/run/secrets"
	}
	if p.configs == "" {
		p.configs = "/"
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.pool == nil {
		p.pool = balancer.NewPool(balancer.PoolOptions{Now: p.now})
	}
	if p.maxTry <= 0 {
		p.maxTry = 3
	}
	dial := o.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	p.tr = newUpstreams(dial)
	p.metrics = newMetrics(o.Registerer)
	p.builder = builder{pool: p.pool, tr: p.tr, budgets: p.budget, guard: p.guard, series: p.metrics.seriesOf}
	p.checks, p.checked = map[*target]context.CancelFunc{}, map[*balancer.Endpoint]int{}
	p.table.Store(emptyTable(p.now()))
	return p
}

// Table returns the table in force.
func (p *Proxy) Table() *Table { return p.table.Load() }

// Build turns the HTTP routes of cfg into a Table without putting it in
// force. The table is derived from the one in force: routes that did not
// change keep what was built for them (endpoints, balancer state,
// policies), so that the cost of a Build is that of what changed. Routes
// the router rejects are left out and reported by Table.Rejected; they
// never affect other routes.
func (p *Proxy) Build(cfg route.Config) *Table {
	p.building.Lock()
	defer p.building.Unlock()
	return p.builder.build(p.table.Load(), cfg, p.now())
}

// Install swaps t in. Requests in flight finish on the table they started
// with. It starts and stops active health checks for the routes t added
// and dropped, and forgets the retry budgets and rate limits of routes t no
// longer has.
func (p *Proxy) Install(t *Table) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range t.errors {
		p.log.Warn("route rejected", zap.String("reason", e))
	}
	old := p.table.Swap(t)
	added, dropped := t.fresh, t.dropped
	var gone []string
	derived := t.base == old.gen
	if !derived {
		// Not derived from the table in force (Builds installed out of
		// order): reconcile with every target.
		added, dropped = t.targets, nil
		in := make(map[*target]bool, len(t.targets))
		for _, tg := range t.targets {
			in[tg] = true
		}
		for tg := range p.checks {
			if !in[tg] {
				dropped = append(dropped, tg)
			}
		}
		p.pruneBudgets(t)
		p.pruneLimits(t)
	} else if gone = goneIDs(t); len(gone) > 0 {
		for _, id := range gone {
			p.budgets.Delete(id)
		}
		p.pruneLimits(t)
	}
	p.updateHealthChecks(added, dropped)
	p.metrics.swapped(t, len(t.config.Errors), gone, !derived)
}

// Update builds a table from cfg and installs it: Build then Install, for a
// proxy that is its own owner (tests, embedding).
func (p *Proxy) Update(cfg route.Config) { p.Install(p.Build(cfg)) }

// CloseIdle closes every idle upstream connection. http.Transport cannot
// close the idle connections of one host; closing all idle ones costs a few
// reconnects and frees the pool of endpoints that left.
func (p *Proxy) CloseIdle() { p.tr.closeIdle() }

// budget returns the retry budget of a route, kept across tables so that a
// swap does not refill it.
func (p *Proxy) budget(route string) *retryBudget {
	b, _ := p.budgets.LoadOrStore(route, new(retryBudget))
	return b.(*retryBudget)
}

// goneIDs are the route IDs of the targets t dropped that it has no route
// of any more.
func goneIDs(t *Table) []string {
	var gone []string
	for _, tg := range t.dropped {
		if !t.hasRoute(tg.id) {
			gone = append(gone, tg.id)
		}
	}
	return gone
}

// pruneBudgets forgets the budgets of routes the table no longer has.
func (p *Proxy) pruneBudgets(t *Table) {
	p.budgets.Range(func(k, _ any) bool {
		if !t.hasRoute(k.(string)) {
			p.budgets.Delete(k)
		}
		return true
	})
}

// updateHealthChecks starts the active health checks of the added targets
// that ask for one and stops those of the dropped targets. A check of a
// target that stays runs on. p.mu is held.
func (p *Proxy) updateHealthChecks(added, dropped []*target) {
	for _, tg := range dropped {
		stop, ok := p.checks[tg]
		if !ok {
			continue
		}
		stop()
		delete(p.checks, tg)
		for _, e := range tg.endpoints {
			if p.checked[e]--; p.checked[e] <= 0 {
				delete(p.checked, e)
				// An endpoint no check covers any more must not stay
				// marked down by the last result of a check that was
				// removed.
				e.SetHealthy(true)
			}
		}
	}
	for _, tg := range added {
		r := tg.route
		if _, running := p.checks[tg]; running || r.HealthPath == "" || len(tg.endpoints) == 0 {
			continue
		}
		ctx, stop := context.WithCancel(context.Background())
		p.checks[tg] = stop
		for _, e := range tg.endpoints {
			p.checked[e]++
		}
		hc := balancer.HealthCheck{
			Path:     r.HealthPath,
			Interval: r.HealthInterval,
			Timeout:  min(r.Timeout, route.DefaultHealthTimeout),
			Client:   &http.Client{Transport: tg.transport},
			Scheme:   tg.scheme(),
		}
		go hc.Run(ctx, tg.endpoints)
	}
}

// Close stops background work: health checks and idle upstream connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	for tg, stop := range p.checks {
		stop()
		delete(p.checks, tg)
	}
	clear(p.checked)
	p.mu.Unlock()
	p.tr.closeIdle()
}

func (tg *target) scheme() string {
	if tg.route.BackendTLS == route.BackendTLSOn || tg.route.BackendTLS == route.BackendTLSInsecure {
		return "https"
	}
	return "http"
}

// upstreams holds the shared transports: one per kind of upstream protocol, so
// every route of a kind shares one connection pool per endpoint.
type upstreams struct {
	plain                 *h1Transport // HTTP/1.1; upgrades go to its fallback
	h2c, tls, tlsInsecure *http.Transport
	auth                  *http.Transport // swarmgate.auth.forward services
}

func newUpstreams(dialTimeout time.Duration) *upstreams {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	base := func() *http.Transport {
		return &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          4096,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: 1 * time.Second,
			// The client negotiated its own encoding; never add ours.
			DisableCompression:     true,
			MaxResponseHeaderBytes: 1 << 20,
			WriteBufferSize:        32 << 10,
			ReadBufferSize:         32 << 10,
		}
	}
	u := &upstreams{h2c: base(), tls: base(), tlsInsecure: base()}
	// The plain transport's fallback carries only upgrades, whose
	// connection then lives as long as the tunnel (a WebSocket: hours,
	// mostly idle) with the transport's read and write buffers: 4 KiB, not
	// the 32 KiB that bodies through the other transports want. The
	// tunnel's reads of 8 KiB bypass a 4 KiB reader.
	upgrades := base()
	upgrades.ReadBufferSize, upgrades.WriteBufferSize = 4<<10, 4<<10
	u.plain = &h1Transport{dialer: dialer, fallback: upgrades, maxIdle: 256, idleTimeout: 90 * time.Second}
	u.h2c.Protocols = new(http.Protocols)
	u.h2c.Protocols.SetUnencryptedHTTP2(true)
	u.tls.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	u.tls.ForceAttemptHTTP2 = true
	u.tlsInsecure.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // the operator asked for it: swarmgate.backend.tls=insecure
	u.tlsInsecure.ForceAttemptHTTP2 = true
	u.auth = base()
	u.auth.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return u
}

func (u *upstreams) forRoute(r *route.Route) http.RoundTripper {
	switch {
	case r.BackendTLS == route.BackendTLSOn:
		return u.tls
	case r.BackendTLS == route.BackendTLSInsecure:
		return u.tlsInsecure
	case r.H2C:
		return u.h2c
	}
	return u.plain
}

func (u *upstreams) closeIdle() {
	u.plain.CloseIdleConnections()
	for _, t := range []*http.Transport{u.h2c, u.tls, u.tlsInsecure, u.auth} {
		t.CloseIdleConnections()
	}
}

// errNoEndpoint is returned when a route has no available endpoint.
var errNoEndpoint = errors.New("no available endpoint")

// trustedPeer reports whether the peer at remoteAddr is a trusted proxy.
func (p *Proxy) trustedPeer(remoteAddr string) bool {
	if len(p.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, pf := range p.trusted {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}
