package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/internal/adminhttp"
	"github.com/swarmgate/swarmgate/socketproxy"
)

// socketProxyOptions are the flags of `swarmgate socket-proxy`.
type socketProxyOptions struct {
	listen       string
	docker       string
	tlsCert      string
	tlsKey       string
	tlsCA        string
	allowFrom    string
	metrics      string
	maxQuery     int
	eventBuffer  int
	drainTimeout time.Duration
	registry     *roleMetrics // nil: a new registry (see metricsOf)
}

func newSocketProxyCmd(logs *logOptions) *cobra.Command {
	var o socketProxyOptions
	cmd := &cobra.Command{
		Use:   "socket-proxy",
		Short: "Expose a read-only subset of the Docker Engine API to edges",
		Long: `Expose to edges only the read-only Docker Engine API endpoints that discovery
needs (GET /_ping, /version, /services, /services/{id}, /tasks, /networks,
/networks/{id}, /nodes, /events; HEAD /_ping), with or without the /vX.Y prefix.
Everything else is answered 403 before a byte reaches the Docker socket.
Identical concurrent GETs share one upstream request and all /events watchers
with the same filters share one upstream stream.`,
		Args: cobra.NoArgs,
		RunE: withLogger(logs, func(ctx context.Context, log *zap.Logger) error {
			return runSocketProxy(ctx, o, log)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":2375", "listen address for edges")
	f.StringVar(&o.docker, "docker", "unix:///var/run/docker.sock", "Docker Engine API: unix:///path or tcp://host:port")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve TLS with this certificate (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&o.tlsCA, "tls-ca", "", "require client certificates signed by this CA (PEM): mutual TLS")
	f.StringVar(&o.allowFrom, "allow-from", "", "comma list of client networks (CIDR or address) allowed to connect; empty allows all")
	f.StringVar(&o.metrics, "metrics", "", "listen address for /metrics; empty disables")
	f.IntVar(&o.maxQuery, "max-query-size", socketproxy.DefaultMaxQuery, "largest query string in bytes (403 beyond)")
	f.IntVar(&o.eventBuffer, "event-buffer", 256, "event lines a watcher may fall behind before it is disconnected")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	return cmd
}

// runSocketProxy serves until ctx is done.
func runSocketProxy(ctx context.Context, o socketProxyOptions, log *zap.Logger) error {
	if err := checkServeTLS("socket-proxy", o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
		return err
	}
	allow, err := socketproxy.ParseAllowFrom(o.allowFrom)
	if err != nil {
		return fmt.Errorf("socket-proxy: --allow-from: %w", err)
	}
	m := metricsOf(o.registry)
	p, err := socketproxy.New(socketproxy.Options{
		Upstream:      o.docker,
		Logger:        log.Named("socketproxy"),
		Registerer:    m.Registerer,
		AllowFrom:     allow,
		MaxQueryBytes: o.maxQuery,
		EventBuffer:   o.eventBuffer,
	})
	if err != nil {
		return fmt.Errorf("socket-proxy: --docker: %w", err)
	}
	defer p.Close()

	srv := p.NewServer(nil)
	if o.tlsCert != "" {
		if srv.TLSConfig, err = socketproxy.ServerTLSConfig(o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
			return fmt.Errorf("socket-proxy: %w", err)
		}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("socket-proxy: --listen: %w", err)
	}
	fatal := make(chan error, 2)
	go func() {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("socket-proxy: listener: %w", err)
		}
	}()
	var metricsSrv *http.Server
	if o.metrics != "" {
		mln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			srv.Close()
			return fmt.Errorf("socket-proxy: --metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
		metricsSrv = adminhttp.NewServer(mux)
		adminhttp.Serve(metricsSrv, mln, fatal, "socket-proxy: metrics listener")
	}
	log.Info("socket-proxy started", zap.String("listen", ln.Addr().String()), zap.String("docker", o.docker),
		zap.Bool("tls", srv.TLSConfig != nil), zap.Bool("mtls", o.tlsCA != ""),
		zap.Int("allow_from", len(allow)), zap.String("metrics", o.metrics), zap.String("version", version))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-fatal:
		log.Error("socket-proxy stopping", zap.Error(runErr))
	}
	// Event streams never finish on their own: end them first (watchers
	// reconnect to another replica and resync), then drain the rest.
	p.EndStreams()
	drainCtx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		log.Warn("drain deadline passed; open connections closed", zap.Error(err))
		srv.Close()
	}
	if metricsSrv != nil {
		metricsSrv.Close()
	}
	log.Info("socket-proxy stopped")
	return runErr
}
