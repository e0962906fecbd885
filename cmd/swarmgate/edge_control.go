package main

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/fleet"
	"github.com/swarmgate/swarmgate/route"
)

// controlEndpoints reads --control and the --control-tls flags: the
// replicas' addresses and the TLS to them (nil: cleartext HTTP/2).
func controlEndpoints(o edgeOptions) ([]string, *tls.Config, error) {
	var addrs []string
	for _, a := range strings.Split(o.control, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, nil, fmt.Errorf("--control %q: no address", o.control)
	}
	t := o.controlTLS
	if !t.set() {
		return addrs, nil, nil
	}
	conf, err := control.ClientTLSConfig(t.cert, t.key, t.ca)
	if err != nil {
		return nil, nil, fmt.Errorf("--control-tls: %w", err)
	}
	return addrs, conf, nil
}

// controlSource returns the control plane's stream for --control.
func controlSource(o edgeOptions, log *zap.Logger, reg prometheus.Registerer) (route.Source, error) {
	addrs, conf, err := controlEndpoints(o)
	if err != nil {
		return nil, err
	}
	c, err := control.NewClient(control.ClientOptions{Addrs: addrs, TLS: conf, Logger: log.Named("control"), Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("--control: %w", err)
	}
	return c, nil
}

// fleetState returns the fleet's shared state through the control plane
// (session ticket keys, and ACME's state unless --acme-cache is given); nil
// without --control.
func fleetState(o edgeOptions, log *zap.Logger) (*fleet.Client, error) {
	if o.control == "" {
		return nil, nil
	}
	addrs, conf, err := controlEndpoints(o)
	if err != nil {
		return nil, err
	}
	c, err := fleet.NewClient(fleet.ClientOptions{Addrs: addrs, TLS: conf, Logger: log.Named("state")})
	if err != nil {
		return nil, fmt.Errorf("--control: %w", err)
	}
	return c, nil
}
