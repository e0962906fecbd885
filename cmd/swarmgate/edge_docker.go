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

// peerTLS is the client side of TLS to another swarmgate component: the
// socket-proxy (--docker-tls-*) or the control plane (--control-tls-*).
type peerTLS struct {
	cert, key, ca string
}

// flags defines --NAME-tls-cert, --NAME-tls-key and --NAME-tls-ca; peer
// names the server in the help.
func (o *peerTLS) flags(f *pflag.FlagSet, name, peer string) {
	f.StringVar(&o.cert, name+"-tls-cert", "", "client certificate (PEM) for "+peer+" that requires mutual TLS")
	f.StringVar(&o.key, name+"-tls-key", "", "client key (PEM) for --"+name+"-tls-cert")
	f.StringVar(&o.ca, name+"-tls-ca", "", "CA (PEM) that signed the certificate of "+peer)
}

// set reports whether any of the flags is set.
func (o *peerTLS) set() bool { return o.cert != "" || o.key != "" || o.ca != "" }

// dockerConfig returns the client TLS configuration of --docker, or nil
// when no flag is set.
func (o *peerTLS) dockerConfig() (*tls.Config, error) {
	if !o.set() {
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
	tlsCfg, err := o.dockerTLS.dockerConfig()
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	s, err := discovery.NewSwarm(discovery.SwarmOptions{
		Host:       o.docker,
		TLS:        tlsCfg,
		Network:    o.network,
		Labels:     o.labels,
		Logger:     log.Named("discovery"),
		Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("edge: --docker: %w", err)
	}
	return s, nil
}
