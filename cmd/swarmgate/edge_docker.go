package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/discovery"
)

// dockerSource returns the Docker Engine API source for --docker.
func dockerSource(o edgeOptions, log *zap.Logger, reg prometheus.Registerer) (discovery.Source, error) {
	s, err := discovery.NewSwarm(discovery.SwarmOptions{
		Host:       o.docker,
		Network:    o.network,
		Logger:     log.Named("discovery"),
		Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("edge: --docker: %w", err)
	}
	return s, nil
}
