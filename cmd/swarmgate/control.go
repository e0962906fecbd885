package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/fleet"
)

// controlOptions are the flags of `swarmgate control`.
type controlOptions struct {
	dockerTLS    peerTLS
	listen       string
	admin        string
	docker       string
	network      string
	labels       discovery.Dialects
	tlsCert      string
	tlsKey       string
	tlsCA        string
	history      int
	drainTimeout time.Duration
	stateKey     string
	metrics      *roleMetrics // nil: a new registry (see metricsOf)
	statePrefix  string
}

func newControlCmd(logs *logOptions) *cobra.Command {
	var o controlOptions
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Run the control plane: watch the Swarm once and stream routes to edges",
		Long: `Run the control plane on a manager, with the Docker socket. It watches the
Swarm (events, polls of the services that converge, periodic resync), parses
the labels, and streams the routes and endpoints to edges (edge --control
tcp://HOST:7070) over HTTP/2: a snapshot when an edge connects, then one delta
per change, each with a version. Versions are the content: replicas on several
managers serve the same ones, and an edge resumes on any of them.`,
		Args: cobra.NoArgs,
		RunE: withLogger(logs, func(ctx context.Context, log *zap.Logger) error {
			return runControl(ctx, o, log)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":7070", "listen address of the stream to edges")
	f.StringVar(&o.admin, "admin", ":8080", "admin listen address (/metrics, /healthz, /readyz, /api/status); empty disables")
	f.StringVar(&o.docker, "docker", "unix:///var/run/docker.sock", "Docker Engine API of a manager: unix:///path or tcp://host:port")
	f.StringVar(&o.network, "network", "", "overlay network the edges share with services")
	labelsFlag(f, &o.labels)
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve the stream over TLS with this certificate (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&o.tlsCA, "tls-ca", "", "require edge certificates signed by this CA (PEM): mutual TLS")
	f.IntVar(&o.history, "history", control.DefaultHistory, "versions an edge can resume from with a delta instead of a snapshot")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long the listeners may take to close")
	f.StringVar(&o.statePrefix, "state-prefix", fleet.DefaultPrefix, "name prefix (and swarmgate.state label) of the shared state's Docker configs, for several stacks in one swarm")
	f.StringVar(&o.stateKey, "state-key-file", "", "file (a Docker secret) with the key that encrypts the fleet's shared state (ACME certificates, session ticket keys) in Docker configs; empty: no shared state")
	o.dockerTLS.flags(f, "docker", "a socket-proxy")
	return cmd
}

// runControl serves until ctx is done, then returns nil.
func runControl(ctx context.Context, o controlOptions, log *zap.Logger) error {
	if err := checkServeTLS("control", o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
		return err
	}
	m := metricsOf(o.metrics)
	dockerTLS, err := o.dockerTLS.dockerConfig()
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	src, err := discovery.NewSwarm(discovery.SwarmOptions{
		Host:       o.docker,
		TLS:        dockerTLS,
		Network:    o.network,
		Labels:     o.labels,
		Logger:     log.Named("discovery"),
		Registerer: m.Registerer,
	})
	if err != nil {
		return fmt.Errorf("control: --docker: %w", err)
	}
	defer src.Close()
	opts := control.Options{
		Source:       src,
		Listen:       o.listen,
		Admin:        o.admin,
		Registry:     m.Registry,
		Logger:       log,
		DrainTimeout: o.drainTimeout,
		Version:      version,
		Server:       control.ServerOptions{History: o.history, Registerer: m.Registerer},
	}
	if o.stateKey != "" {
		key, err := fleet.LoadKey(o.stateKey)
		if err != nil {
			return fmt.Errorf("control: --state-key-file: %w", err)
		}
		if opts.State, err = fleet.NewDocker(fleet.DockerOptions{Client: src.Client(), Key: key, Prefix: o.statePrefix}); err != nil {
			return fmt.Errorf("control: %w", err)
		}
	}
	if host, err := os.Hostname(); err == nil {
		opts.Server.Name = host
	}
	if o.tlsCert != "" {
		if opts.TLS, err = control.ServerTLSConfig(o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
			return err
		}
	}
	return control.Run(ctx, opts)
}
