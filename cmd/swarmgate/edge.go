package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/handover"
	"github.com/swarmgate/swarmgate/l4"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// edgeOptions are the flags of `swarmgate edge`.
type edgeOptions struct {
	tlsOptions
	dockerTLS     dockerTLSOptions
	httpAddr      string
	httpsAddr     string
	adminAddr     string
	docker        string
	routes        string
	routesPoll    time.Duration
	cluster       string
	network       string
	accessLog     bool
	drainTimeout  time.Duration
	shutdownDelay time.Duration
	backendDrain  time.Duration
	dialTimeout   time.Duration
	maxBody       int64
	maxHeader     int
	handover      string
	pprof         bool
}

func newEdgeCmd(logs *logOptions) *cobra.Command {
	var o edgeOptions
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run the data plane: listeners, router, balancer and proxy",
		Long: `Run the data plane. Routes come from the Docker Engine API (--docker, normally
the socket-proxy's address) and/or a routes file (--routes), and are swapped in
atomically: no reload, no dropped request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logs)
			if err != nil {
				return err
			}
			defer log.Sync()
			if o.docker == "" {
				o.docker = os.Getenv("DOCKER_HOST")
			}
			return runEdge(cmd.Context(), o, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.httpAddr, "http", ":80", "HTTP listen address")
	f.StringVar(&o.httpsAddr, "https", ":443", "HTTPS listen address (TLS termination and SNI passthrough); empty disables")
	f.StringVar(&o.adminAddr, "admin", ":8080", "admin listen address (/metrics, /healthz, /readyz, /api/routes); empty disables")
	f.StringVar(&o.docker, "docker", "", "Docker Engine API to discover services from: the socket-proxy (tcp://host:2375) or unix:///var/run/docker.sock (default $DOCKER_HOST; empty: no Docker source)")
	f.StringVar(&o.routes, "routes", "", "YAML routes file, watched for changes")
	f.DurationVar(&o.routesPoll, "routes-poll", time.Second, "how often the routes file is checked for changes")
	f.StringVar(&o.cluster, "cluster", "", "serve only routes labelled swarmgate.cluster=NAME")
	f.StringVar(&o.network, "network", "", "overlay network the edge shares with services")
	f.BoolVar(&o.accessLog, "access-log", true, "log every request (JSON)")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	f.DurationVar(&o.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long with /readyz failing before closing listeners")
	f.DurationVar(&o.backendDrain, "backend-drain-timeout", 30*time.Second, "how long WebSockets and streamed responses to a task that left rotation may go on before they are ended cleanly")
	f.DurationVar(&o.dialTimeout, "dial-timeout", 5*time.Second, "timeout for connecting to a task")
	f.Int64Var(&o.maxBody, "max-body-size", 1<<30, "largest request body in bytes (413 beyond); -1 is unlimited")
	f.IntVar(&o.maxHeader, "max-header-size", 64<<10, "largest request header block in bytes (431 beyond)")
	f.BoolVar(&o.pprof, "admin-pprof", false, "serve Go profiles under /debug/pprof/ on the admin listener")
	o.tlsOptions.flags(f)
	o.dockerTLS.flags(f)
	f.StringVar(&o.handover, "handover", "", "unix socket for zero-downtime restarts: a new edge started with the same path takes over the listeners of the running one, which then drains and exits")
	return cmd
}

// runEdge serves until ctx is done, then drains and returns nil.
func runEdge(ctx context.Context, o edgeOptions, log *zap.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var access *zap.Logger
	if o.accessLog {
		access = log.Named("access")
	}
	trusted, err := o.trustedProxies()
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	engine := l4.New(l4.Options{
		Logger:         log.Named("l4"),
		Registerer:     reg,
		DialTimeout:    o.dialTimeout,
		ListenHost:     o.tcpHost,
		TrustedProxies: trusted,
	})
	p := proxy.New(proxy.Options{
		Logger:       log.Named("proxy"),
		AccessLog:    access,
		Registerer:   reg,
		DialTimeout:  o.dialTimeout,
		L4:           engine,
		BackendDrain: o.backendDrain,
		HTTPSPort:    portOf(o.httpsAddr),
	})
	defer p.Close()
	admin := proxy.NewAdmin(p, reg)
	if o.pprof {
		admin.EnablePprof()
	}

	fatal := make(chan error, 8)
	sources, err := edgeSources(o, log, reg)
	if err != nil {
		return err
	}
	if len(sources) == 0 {
		return errors.New("edge: no route source: give --docker (or DOCKER_HOST) and/or --routes")
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tlsSet, err := newTLS(runCtx, o.tlsOptions, p, log, reg)
	if err != nil {
		return err
	}
	lns, ack, err := listeners(ctx, o, log)
	if err != nil {
		return err
	}
	httpLn, adminLn := lns["http"], lns["admin"]
	limits := proxy.ServerOptions{MaxBodyBytes: o.maxBody, MaxHeaderBytes: o.maxHeader}
	srv := p.NewServer("http", limits)
	if tlsSet.acme != nil {
		srv.Handler = tlsSet.acme.HTTPHandler(srv.Handler) // HTTP-01 challenges
	}
	var httpsSrv *proxy.Server
	if lns["https"] != nil {
		httpsSrv = p.NewServer("https", limits)
		httpsSrv.TLSConfig = tlsSet.config
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

	var wg sync.WaitGroup
	merge := newMerger(len(sources), o.cluster, p, admin)
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(runCtx, merge.update(i)); err != nil {
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
	case <-time.After(30 * time.Second):
		log.Warn("no routing table after 30s; serving anyway")
	case <-ctx.Done():
	case err := <-fatal:
		fatal <- err // for the wait below
	}
	if len(trusted) > 0 {
		httpLn = engine.ProxyListener(httpLn) // read PROXY headers
	}
	go func() {
		if err := srv.Serve(httpLn); err != nil {
			fatal <- fmt.Errorf("edge: http listener: %w", err)
		}
	}()
	if httpsSrv != nil {
		go func() {
			// Passthrough names are spliced by the L4 engine; the rest is
			// terminated here.
			if err := httpsSrv.Serve(tls.NewListener(engine.TLSListener(lns["https"]), tlsSet.config)); err != nil {
				fatal <- fmt.Errorf("edge: https listener: %w", err)
			}
		}()
	}
	log.Info("edge started", zap.String("http", httpLn.Addr().String()), zap.String("admin", o.adminAddr),
		zap.Int("sources", len(sources)), zap.String("cluster", o.cluster), zap.String("version", version))
	if ack != nil {
		// Serving from a full table now: the predecessor may drain.
		if err := ack(); err != nil {
			log.Warn("predecessor did not take the ack; it keeps serving too", zap.Error(err))
		}
	}
	handedOver := make(chan struct{})
	if o.handover != "" {
		go func() {
			err := handover.Offer(runCtx, o.handover, func() map[string]net.Listener { return lns }, func() { close(handedOver) })
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
	if o.shutdownDelay > 0 && runErr == nil && !successor {
		log.Info("draining: /readyz fails, still serving", zap.Duration("delay", o.shutdownDelay))
		time.Sleep(o.shutdownDelay)
	}
	drainCtx, drainCancel := context.WithTimeout(context.Background(), o.drainTimeout)
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

// listeners returns the edge's listening sockets, named "http" and "admin":
// inherited from a running edge when --handover finds one (ack must then be
// called once they are served), else bound from the flags.
func listeners(ctx context.Context, o edgeOptions, log *zap.Logger) (lns map[string]net.Listener, ack func() error, err error) {
	lns = make(map[string]net.Listener)
	if o.handover != "" {
		inherited, a, err := handover.Inherit(ctx, o.handover)
		switch {
		case err == nil:
			log.Info("took over the listeners of the running edge", zap.Int("listeners", len(inherited)))
			lns, ack = inherited, a
		case !errors.Is(err, handover.ErrNoPredecessor):
			return nil, nil, fmt.Errorf("edge: --handover: %w", err)
		}
	}
	bind := func(name, addr string) error {
		if addr == "" || lns[name] != nil {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("edge: --%s: %w", name, err)
		}
		lns[name] = ln
		return nil
	}
	if err := bind("http", o.httpAddr); err != nil {
		return nil, nil, err
	}
	if err := bind("https", o.httpsAddr); err != nil {
		lns["http"].Close()
		return nil, nil, err
	}
	if err := bind("admin", o.adminAddr); err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, nil, err
	}
	return lns, ack, nil
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

// edgeSources builds the route sources the flags ask for.
func edgeSources(o edgeOptions, log *zap.Logger, reg prometheus.Registerer) ([]route.Source, error) {
	var sources []route.Source
	if o.routes != "" {
		sources = append(sources, discovery.NewFile(discovery.FileOptions{
			Path: o.routes, Interval: o.routesPoll, Logger: log.Named("discovery"),
		}))
	}
	if o.docker != "" {
		s, err := dockerSource(o, log, reg)
		if err != nil {
			return nil, err
		}
		sources = append(sources, s)
	}
	return sources, nil
}

// merger keeps the latest Config of every source and swaps in their merge.
type merger struct {
	mu      sync.Mutex // serialises merges; never taken on the request path
	latest  []route.Config
	got     []bool
	cluster string
	proxy   *proxy.Proxy
	admin   *proxy.Admin
	ready   chan struct{} // closed once every source has delivered a Config
}

func newMerger(n int, cluster string, p *proxy.Proxy, a *proxy.Admin) *merger {
	return &merger{latest: make([]route.Config, n), got: make([]bool, n), cluster: cluster,
		proxy: p, admin: a, ready: make(chan struct{})}
}

func (m *merger) update(i int) func(route.Config) {
	return func(c route.Config) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.latest[i], m.got[i] = c, true
		m.proxy.Update(discovery.Merge(m.cluster, m.latest...))
		for _, ok := range m.got {
			if !ok {
				return
			}
		}
		if !m.admin.Ready() {
			m.admin.SetReady(true)
			close(m.ready)
		}
	}
}
