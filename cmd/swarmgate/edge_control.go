package main

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/route"
)

// controlTLSOptions are the edge's side of the control plane's (mutual) TLS.
type controlTLSOptions struct {
	cert, key, ca string
}

func (o *controlTLSOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.cert, "control-tls-cert", "", "client certificate (PEM) for a control plane that requires mutual TLS")
	f.StringVar(&o.key, "control-tls-key", "", "private key (PEM) of --control-tls-cert")
	f.StringVar(&o.ca, "control-tls-ca", "", "CA (PEM) that signed the control plane's certificate; setting any --control-tls flag makes the stream TLS")
}

// controlSource returns the control plane's stream for --control.
func controlSource(o edgeOptions, log *zap.Logger, reg prometheus.Registerer) (route.Source, error) {
	var addrs []string
	for _, a := range strings.Split(o.control, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("--control %q: no address", o.control)
	}
	copts := control.ClientOptions{Addrs: addrs, Logger: log.Named("control"), Registerer: reg}
	t := o.controlTLS
	if t.cert != "" || t.key != "" || t.ca != "" {
		conf, err := control.ClientTLSConfig(t.cert, t.key, t.ca)
		if err != nil {
			return nil, fmt.Errorf("--control-tls: %w", err)
		}
		copts.TLS = conf
	}
	c, err := control.NewClient(copts)
	if err != nil {
		return nil, fmt.Errorf("--control: %w", err)
	}
	return c, nil
}
