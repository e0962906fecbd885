package main

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/route"
)

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
	if t := o.controlTLS; t.set() {
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
