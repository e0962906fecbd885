package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/edge"
	"github.com/swarmgate/swarmgate/route"
)

// edgeOptions are the flags of `swarmgate edge`.
type edgeOptions struct {
	tlsOptions
	dockerTLS     peerTLS
	httpAddr      string
	httpsAddr     string
	http3         bool
	http3Port     int
	adminAddr     string
	docker        string
	control       string
	controlTLS    peerTLS
	routes        string
	routesPoll    time.Duration
	cluster       string
	network       string
	labels        discovery.Dialects
	accessLog     bool
	drainTimeout  time.Duration
	shutdownDelay time.Duration
	backendDrain  time.Duration
	dialTimeout   time.Duration
	maxBody       int64
	maxHeader     int
	requestBuffer int64
	bodyTimeout   time.Duration
	stdlibHTTP1   bool
	stdlibHTTP2   bool
	handover      string
	pprof         bool
	adminAllow    string
	adminToken    string
	metrics       *roleMetrics // nil: a new registry (see metricsOf)
}

func newEdgeCmd(logs *logOptions) *cobra.Command {
	var o edgeOptions
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run the data plane: listeners, router, balancer and proxy",
		Long: `Run the data plane. Routes come from the control plane (--control, in a
swarm: the edge never sees the Docker API), from the Docker Engine API
(--docker, for a single host) and/or from a routes file (--routes), and are
swapped in atomically: no reload, no dropped request.`,
		Args: cobra.NoArgs,
		RunE: withLogger(logs, func(ctx context.Context, log *zap.Logger) error {
			if o.docker == "" {
				o.docker = os.Getenv("DOCKER_HOST")
			}
			return runEdge(ctx, o, log)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.httpAddr, "http", ":80", "HTTP listen address")
	f.StringVar(&o.httpsAddr, "https", ":443", "HTTPS listen address (TLS termination and SNI passthrough); empty disables")
	f.BoolVar(&o.http3, "http3", true, "with --https, serve HTTP/3 (QUIC) on its port over UDP and advertise it with Alt-Svc; --http3=false turns it off")
	f.IntVar(&o.http3Port, "http3-advertise-port", 0, "the UDP port Alt-Svc advertises for HTTP/3, when clients reach another than --https's (a published port that differs from the container's); 0: --https's port")
	f.StringVar(&o.adminAddr, "admin", ":8080", "admin listen address (/metrics, /healthz, /readyz, /api/routes); empty disables")
	f.StringVar(&o.docker, "docker", "", "Docker Engine API to discover services from: the socket-proxy (tcp://host:2375) or unix:///var/run/docker.sock (default $DOCKER_HOST; empty: no Docker source)")
	f.StringVar(&o.control, "control", "", "control plane replicas to stream routes from, comma-separated (tcp://swarmgate-control:7070); the edge stays on one and fails over to the next")
	o.controlTLS.flags(f, "control", "a control plane")
	f.StringVar(&o.routes, "routes", "", "YAML routes file, watched for changes")
	f.DurationVar(&o.routesPoll, "routes-poll", time.Second, "how often the routes file is checked for changes")
	f.StringVar(&o.cluster, "cluster", "", "serve only routes labelled swarmgate.cluster=NAME")
	f.StringVar(&o.network, "network", "", "overlay network the edge shares with services")
	labelsFlag(f, &o.labels)
	f.BoolVar(&o.accessLog, "access-log", true, "log every request (JSON)")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	f.DurationVar(&o.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long with /readyz failing before closing listeners")
	f.DurationVar(&o.backendDrain, "backend-drain-timeout", 30*time.Second, "how long WebSockets and streamed responses to a task that left rotation may go on before they are ended cleanly")
	f.DurationVar(&o.dialTimeout, "dial-timeout", 5*time.Second, "timeout for connecting to a task")
	f.Int64Var(&o.maxBody, "max-body-size", 1<<30, "largest request body in bytes (413 beyond); -1 is unlimited")
	f.IntVar(&o.maxHeader, "max-header-size", 64<<10, "largest request header block in bytes (431 beyond)")
	f.Int64Var(&o.requestBuffer, "request-buffer", 64<<10, "bytes of a request body read before a task is picked, so that slow clients hold no connection to a task; larger bodies stream beyond it; -1 streams every body (gRPC bodies always stream)")
	f.DurationVar(&o.bodyTimeout, "body-timeout", 60*time.Second, "how long a client may send nothing in the middle of a request body before it gets 408 (an upload that keeps moving is never cut)")
	f.BoolVar(&o.stdlibHTTP1, "stdlib-http1", false, "serve HTTP/1.x and HTTP/2 with Go's net/http server instead of the edge's own connection loops (a fallback)")
	f.BoolVar(&o.stdlibHTTP2, "stdlib-http2", false, "serve HTTP/2 with Go's net/http server instead of the edge's own (a fallback)")
	f.BoolVar(&o.pprof, "admin-pprof", false, "serve Go profiles under /debug/pprof/ on the admin listener (to loopback clients, or to others with --admin-token-file)")
	f.StringVar(&o.adminAllow, "admin-allow", "", "comma-separated CIDRs that may use the admin API beyond /healthz and /readyz (default: loopback and private ranges)")
	f.StringVar(&o.adminToken, "admin-token-file", "", "file (a Docker secret) holding a bearer token the admin API requires beyond /healthz and /readyz")
	o.tlsOptions.flags(f)
	o.dockerTLS.flags(f, "docker", "a socket-proxy")
	f.StringVar(&o.handover, "handover", "", "unix socket for zero-downtime restarts: a new edge started with the same path takes over the listeners of the running one, which then drains and exits")
	return cmd
}

// runEdge serves until ctx is done, then drains and returns nil.
func runEdge(ctx context.Context, o edgeOptions, log *zap.Logger) error {
	m := metricsOf(o.metrics)
	trusted, err := o.trustedProxies()
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	forwarders, err := o.trustedForwarders()
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	admin, err := o.adminOptions()
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	sources, err := edgeSources(o, log, m.Registerer)
	if err != nil {
		return err
	}
	state, err := fleetState(o, log)
	if err != nil {
		return err
	}
	acmeCache := o.acmeCache
	if state != nil {
		defer state.Close()
		if !o.ownACMECache() {
			acmeCache = "" // the fleet's
		}
	}
	return edge.Run(ctx, edge.Options{
		Sources:            sources,
		Cluster:            o.cluster,
		HTTPAddr:           o.httpAddr,
		HTTPSAddr:          o.httpsAddr,
		HTTP3:              o.http3 && o.httpsAddr != "",
		HTTP3AdvertisePort: o.http3Port,
		AdminAddr:          o.adminAddr,
		Handover:           o.handover,
		TLS: edge.TLSOptions{
			Certs: o.certs, DefaultCert: o.defaultCert, SelfSigned: o.selfSigned,
			ACME: o.acme, ACMEEmail: o.acmeEmail, ACMEDirectory: o.acmeDirectory, ACMECache: acmeCache, ACMECA: o.acmeCA,
			Fleet: state,
		},
		TrustedProxies:    trusted,
		TrustedForwarders: forwarders,
		TCPHost:           o.tcpHost,
		Logger:            log,
		AccessLog:         o.accessLog,
		Registry:          m.Registry,
		Registerer:        m.Registerer,
		Admin:             admin,
		Version:           version,
		DrainTimeout:      o.drainTimeout,
		ShutdownDelay:     o.shutdownDelay,
		BackendDrain:      o.backendDrain,
		DialTimeout:       o.dialTimeout,
		MaxBodyBytes:      o.maxBody,
		MaxHeader:         o.maxHeader,
		RequestBuffer:     o.requestBuffer,
		BodyTimeout:       o.bodyTimeout,
		StdlibHTTP1:       o.stdlibHTTP1,
		StdlibHTTP2:       o.stdlibHTTP2,
	})
}

// edgeSources builds the route sources the flags ask for.
func edgeSources(o edgeOptions, log *zap.Logger, reg prometheus.Registerer) ([]route.Source, error) {
	var sources []route.Source
	if o.routes != "" {
		sources = append(sources, discovery.NewFile(discovery.FileOptions{
			Path: o.routes, Interval: o.routesPoll, Labels: o.labels, Logger: log.Named("discovery"),
		}))
	}
	if o.control != "" {
		s, err := controlSource(o, log, reg)
		if err != nil {
			return nil, err
		}
		sources = append(sources, s)
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

// adminOptions reads --admin-allow, --admin-token-file and --admin-pprof.
func (o edgeOptions) adminOptions() (edge.AdminOptions, error) {
	a := edge.AdminOptions{Pprof: o.pprof}
	if strings.TrimSpace(o.adminAllow) != "" {
		allow, err := parseCIDRs("--admin-allow", o.adminAllow)
		if err != nil {
			return a, err
		}
		a.Allow = allow
	}
	if o.adminToken != "" {
		b, err := os.ReadFile(o.adminToken)
		if err != nil {
			return a, fmt.Errorf("--admin-token-file: %w", err)
		}
		if a.Token = strings.TrimSpace(string(b)); a.Token == "" {
			return a, fmt.Errorf("--admin-token-file %s: the file is empty", o.adminToken)
		}
	}
	return a, nil
}
