package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/route"
)

// dockerTLSOptions are the client side of the socket-proxy's mutual TLS.
type dockerTLSOptions struct {
	cert, key, ca string
}

func (o *dockerTLSOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.cert, "docker-tls-cert", "", "client certificate (PEM) for a socket-proxy that requires mutual TLS")
	f.StringVar(&o.key, "docker-tls-key", "", "client key (PEM) for --docker-tls-cert")
	f.StringVar(&o.ca, "docker-tls-ca", "", "CA (PEM) that signed the socket-proxy's certificate")
}

// config returns the client TLS configuration, or nil when no flag is set.
func (o *dockerTLSOptions) config() (*tls.Config, error) {
	if o.cert == "" && o.key == "" && o.ca == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if (o.cert == "") != (o.key == "") {
		return nil, errors.New("--docker-tls-cert and --docker-tls-key go together")
	}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("--docker-tls-cert: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, fmt.Errorf("--docker-tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("--docker-tls-ca: no certificate in the file")
		}
	}
	return cfg, nil
}

// dockerSource returns the Docker Engine API source for --docker.
func dockerSource(o edgeOptions, log *zap.Logger, reg prometheus.Registerer) (route.Source, error) {
	tlsCfg, err := o.dockerTLS.config()
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	s, err := discovery.NewSwarm(discovery.SwarmOptions{
		Host:       o.docker,
		TLS:        tlsCfg,
		Network:    o.network,
		Logger:     log.Named("discovery"),
		Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("edge: --docker: %w", err)
	}
	return s, nil
}
