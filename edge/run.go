package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/handover"
	"github.com/swarmgate/swarmgate/l4"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// Options configure Run. Zero values are working defaults where a field says
// so; Sources and Registry are required.
type Options struct {
	Sources []route.Source // merged in order; at least one
	Cluster string         // serve only routes of this cluster; "" is route.DefaultCluster

	HTTPAddr  string // HTTP listen address; "" disables
	HTTPSAddr string // HTTPS listen address (TLS termination and SNI passthrough); "" disables
	// HTTP3 serves HTTP/3 (QUIC) on the UDP port of HTTPSAddr, with the same
	// certificates and routes, and advertises it with Alt-Svc on the HTTPS
	// listener's responses.
	HTTP3 bool
	// HTTP3AdvertisePort is the UDP port Alt-Svc names: the one clients
	// reach, when it is not the local one (a published port that differs
	// from the container's). 0: the port of the UDP socket.
	HTTP3AdvertisePort int
	AdminAddr          string // admin listen address; "" disables
	// Handover is a unix socket for zero-downtime restarts: a new edge started
	// with the same path takes over the listeners of the running one, which
	// then drains and exits. "" disables.
	Handover string

	TLS            TLSOptions
	TrustedProxies []netip.Prefix // load balancers that send a PROXY header on every connection
	// TrustedForwarders are the peers whose Forwarded, X-Real-IP,
	// X-Forwarded-Port and X-Forwarded-Prefix are passed on. If nil,
	// TrustedProxies.
	TrustedForwarders []netip.Prefix
	TCPHost           string // address TCP route ports listen on; "": all

	Logger    *zap.Logger // nil: no logging
	AccessLog bool        // one log line per request (logger "access")
	// Registry receives every metric and serves /metrics.
	Registry *prometheus.Registry
	// Registerer, if not nil, receives the metrics instead of Registry
	// (which still serves them): a wrapper that sees every registration.
	Registerer prometheus.Registerer
	Admin      AdminOptions // who may use the admin API
	Version    string       // logged at start

	DrainTimeout  time.Duration // on shutdown, how long requests in flight may take; 0: 30s
	ShutdownDelay time.Duration // on shutdown, keep serving this long with /readyz failing
	BackendDrain  time.Duration // see Core.BackendDrain
	DialTimeout   time.Duration // connecting to a task; 0: 5s
	MaxBodyBytes  int64         // largest request body; see proxy.ServerOptions
	MaxHeader     int           // largest request header block; see proxy.ServerOptions
	// RequestBuffer is how much of a request body is read before an
	// upstream is picked; see proxy.Options. 0: 64 KiB; negative: none.
	RequestBuffer int64
	// BodyTimeout bounds a client's silence in the middle of a request
	// body; see proxy.ServerOptions.
	BodyTimeout time.Duration
	// StdlibHTTP1 serves HTTP/1.x with net/http's server instead of the
	// edge's own connection loop; see proxy.ServerOptions.
	StdlibHTTP1 bool
	// StdlibHTTP2 serves HTTP/2 with net/http's server instead of the
	// edge's own; see proxy.ServerOptions.
	StdlibHTTP2 bool
	// FirstTableWait bounds the wait for every source's first Config before
	// traffic is accepted anyway. 0: 30s.
	FirstTableWait time.Duration
}

// Run serves until ctx is done or the listeners are handed over to a
// successor, then drains and returns nil; it returns an error if the edge
// cannot start or a listener fails.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if len(o.Sources) == 0 {
		return errors.New("edge: no route source: give --docker (or DOCKER_HOST), --control and/or --routes")
	}
	if o.Registry == nil {
		return errors.New("edge: no metrics registry")
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.FirstTableWait <= 0 {
		o.FirstTableWait = 30 * time.Second
	}
	reg := o.Registerer
	if reg == nil {
		reg = o.Registry
	}
	var access *zap.Logger
	if o.AccessLog {
		access = log.Named("access")
	}
	engine := l4.New(l4.Options{
		Logger:         log.Named("l4"),
		Registerer:     reg,
		DialTimeout:    o.DialTimeout,
		ListenHost:     o.TCPHost,
		TrustedProxies: o.TrustedProxies,
	})
	if o.TrustedForwarders == nil {
		o.TrustedForwarders = o.TrustedProxies
	}
	pool := balancer.NewPool(balancer.PoolOptions{})
	var e *Edge
	p := proxy.New(proxy.Options{
		Logger:         log.Named("proxy"),
		AccessLog:      access,
		Registerer:     reg,
		DialTimeout:    o.DialTimeout,
		Pool:           pool,
		TLSName:        func(host string) string { return e.TLSName(host) },
		TrustedProxies: o.TrustedForwarders,
		HTTPSPort:      portOf(o.HTTPSAddr),
		SecretsDir:     o.TLS.Certs,
		RequestBuffer:  o.RequestBuffer,
	})
	defer p.Close()
	e = New(Core{Proxy: p, Pool: pool, L4: engine, Logger: log.Named("edge"), BackendDrain: o.BackendDrain, Registerer: reg})
	defer e.Close()
	admin := NewAdmin(e, o.Registry, o.Admin)
	admin.ReportSources(o.Sources)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tlsSet, err := newTLS(runCtx, o.TLS, portOf(o.HTTPAddr), portOf(o.HTTPSAddr), e, log, reg)
	if err != nil {
		return err
	}
	defer tlsSet.close()
	if tlsSet.store != nil {
		admin.ReportCertificates(tlsSet.store)
	}
	socks, ack, err := listeners(ctx, o, log)
	if err != nil {
		return err
	}
	lns := socks.Listeners
	httpLn, adminLn := lns["http"], lns["admin"]
	limits := proxy.ServerOptions{MaxBodyBytes: o.MaxBodyBytes, MaxHeaderBytes: o.MaxHeader, BodyTimeout: o.BodyTimeout,
		StdlibHTTP1: o.StdlibHTTP1, StdlibHTTP2: o.StdlibHTTP2}
	var srv, httpsSrv *proxy.Server
	if httpLn != nil {
		srv = p.NewServer("http", limits)
		if tlsSet.acme != nil {
			srv.Handler = tlsSet.acme.HTTPHandler(srv.Handler) // HTTP-01 challenges
		}
	}
	if lns["https"] != nil {
		httpsSrv = p.NewServer("https", limits)
		httpsSrv.TLSConfig = tlsSet.config
	}
	var h3Srv *proxy.HTTP3Server
	if udp := socks.Packets["https"]; udp != nil {
		h3Srv = p.NewHTTP3Server("http3", limits, tlsSet.config)
		h3Srv.Handshakes = tlsSet.m.quicHandshake
		if httpsSrv != nil {
			port := o.HTTP3AdvertisePort
			if port == 0 {
				port = portOf(udp.LocalAddr().String())
			}
			httpsSrv.Handler = proxy.AdvertiseHTTP3(httpsSrv.Handler, proxy.AltSvc(port, altSvcMaxAge))
		}
	}
	var adminSrv *http.Server
	if adminLn != nil {
		adminSrv = &http.Server{
			Handler:           admin.Handler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
		}
	}

	fatal := make(chan error, 8)
	var wg sync.WaitGroup
	merge := newMerger(len(o.Sources), o.Cluster, e)
	merge.onReady = func() {
		admin.SetReady(true)
		// The first table leaves the garbage of its sources' snapshots
		// (at 10,000 routes some 40 MB: the frame, its decoding, the
		// build). Collected now, while the edge has nothing else to do,
		// and its pages given back, it does not fall due in the window of
		// the first changes: bench/scale's 50 edges, started at once,
		// spent 20-80 ms of CPU each in their first two changes, the
		// other changes 2-7 ms.
		go debug.FreeOSMemory()
	}
	for i, s := range o.Sources {
		if r, ok := s.(routeRecycler); ok {
			r.RecycleRoutes()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(runCtx, admin.track(i, merge.update(i))); err != nil {
				fatal <- fmt.Errorf("edge: source %s: %w", s.Name(), err)
			}
		}()
	}
	if adminSrv != nil {
		go func() {
			if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fatal <- fmt.Errorf("edge: admin listener: %w", err)
			}
		}()
	}
	// Traffic is accepted once the first table is in force: a successor
	// shares its inherited sockets with the running edge, and must not answer
	// its share of them from an empty table.
	select {
	case <-merge.ready:
	case <-time.After(o.FirstTableWait):
		log.Warn("no routing table yet; serving anyway", zap.Duration("waited", o.FirstTableWait))
	case <-ctx.Done():
	case err := <-fatal:
		fatal <- err // for the wait below
	}
	if srv != nil {
		if len(o.TrustedProxies) > 0 {
			httpLn = engine.ProxyListener(httpLn) // read PROXY headers
		}
		go func() {
			if err := srv.Serve(httpLn); err != nil {
				fatal <- fmt.Errorf("edge: http listener: %w", err)
			}
		}()
	}
	if httpsSrv != nil {
		go func() {
			// Passthrough names are spliced by the L4 engine; the rest is
			// terminated here.
			if err := httpsSrv.Serve(tlsSet.listener(engine.TLSListener(lns["https"]), httpsSrv.Server)); err != nil {
				fatal <- fmt.Errorf("edge: https listener: %w", err)
			}
		}()
	}
	if h3Srv != nil {
		go func() {
			if err := h3Srv.Serve(socks.Packets["https"]); err != nil {
				fatal <- fmt.Errorf("edge: http3 listener: %w", err)
			}
		}()
	}
	log.Info("edge started", zap.String("http", o.HTTPAddr), zap.String("https", o.HTTPSAddr), zap.Bool("http3", h3Srv != nil), zap.String("admin", o.AdminAddr),
		zap.Int("sources", len(o.Sources)), zap.String("cluster", o.Cluster), zap.String("version", o.Version))
	if ack != nil {
		// Serving from a full table now: the predecessor may drain.
		if err := ack(); err != nil {
			log.Warn("predecessor did not take the ack; it keeps serving too", zap.Error(err))
		}
	}
	handedOver := make(chan struct{})
	if o.Handover != "" {
		go func() {
			err := handover.Offer(runCtx, o.Handover, func() handover.Sockets { return socks }, func() { close(handedOver) })
			if err != nil {
				log.Error("hand-over socket failed; restarts will not be seamless", zap.Error(err))
			}
		}()
	}

	var runErr error
	successor := false
	select {
	case <-ctx.Done():
	case <-handedOver:
		successor = true
		log.Info("listeners handed over to a new edge; draining")
	case runErr = <-fatal:
		log.Error("edge stopping", zap.Error(runErr))
	}

	// Fail readiness first, keep serving through the delay so that load
	// balancers stop sending, then stop accepting and drain what is in flight.
	// After a hand-over the successor accepts already: no delay.
	admin.Drain()
	if o.ShutdownDelay > 0 && runErr == nil && !successor {
		log.Info("draining: /readyz fails, still serving", zap.Duration("delay", o.ShutdownDelay))
		time.Sleep(o.ShutdownDelay)
	}
	drainCtx, drainCancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	defer drainCancel()
	var drain sync.WaitGroup
	for _, s := range []*proxy.Server{srv, httpsSrv} {
		if s == nil {
			continue
		}
		drain.Add(1)
		go func() {
			defer drain.Done()
			if err := s.Shutdown(drainCtx); err != nil {
				log.Warn("drain deadline passed; open connections closed", zap.Error(err))
			}
		}()
	}
	if h3Srv != nil {
		drain.Add(1)
		go func() {
			defer drain.Done()
			if err := h3Srv.Shutdown(drainCtx); err != nil {
				log.Warn("drain deadline passed; open HTTP/3 connections closed", zap.Error(err))
			}
		}()
	}
	drain.Wait()
	// After the servers: closing the engine abandons connections its wrapped
	// listeners have accepted but not delivered yet.
	engine.Close()
	engine.Drain(drainCtx)
	cancel()
	wg.Wait()
	if adminSrv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		adminSrv.Shutdown(sctx)
		scancel()
	}
	log.Info("edge stopped")
	return runErr
}

// altSvcMaxAge is how long a client may keep using HTTP/3 after an Alt-Svc.
const altSvcMaxAge = 24 * time.Hour

// listeners returns the edge's listening sockets, named "http", "https" and
// "admin", and with HTTP3 the UDP socket "https" on the HTTPS port:
// inherited from a running edge when Handover finds one (ack must then be
// called once they are served), else bound from the options.
func listeners(ctx context.Context, o Options, log *zap.Logger) (socks handover.Sockets, ack func() error, err error) {
	socks = handover.Sockets{Listeners: make(map[string]net.Listener), Packets: make(map[string]net.PacketConn)}
	if o.Handover != "" {
		inherited, a, err := handover.Inherit(ctx, o.Handover)
		switch {
		case err == nil:
			log.Info("took over the listeners of the running edge", zap.Int("listeners", len(inherited.Listeners)), zap.Int("udp", len(inherited.Packets)))
			socks, ack = inherited, a
		case !errors.Is(err, handover.ErrNoPredecessor):
			return socks, nil, fmt.Errorf("edge: --handover: %w", err)
		}
	}
	lns := socks.Listeners
	for _, l := range []struct{ name, addr string }{{"http", o.HTTPAddr}, {"https", o.HTTPSAddr}, {"admin", o.AdminAddr}} {
		if l.addr == "" || lns[l.name] != nil {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			socks.Close()
			return socks, nil, fmt.Errorf("edge: --%s: %w", l.name, err)
		}
		lns[l.name] = ln
	}
	switch https := lns["https"]; {
	case !o.HTTP3 || https == nil:
		// A predecessor's UDP socket that this edge does not serve is not kept.
		for _, pc := range socks.Packets {
			pc.Close()
		}
		clear(socks.Packets)
	case socks.Packets["https"] == nil:
		// The port the HTTPS listener got (an address with port 0 too).
		pc, err := net.ListenPacket("udp", https.Addr().String())
		if err != nil {
			socks.Close()
			return socks, nil, fmt.Errorf("edge: --https (HTTP/3 over UDP): %w", err)
		}
		socks.Packets["https"] = pc
	}
	return socks, ack, nil
}

// portOf returns the port of a listen address, or 0.
func portOf(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}
