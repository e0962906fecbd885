package main

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/discovery"
)

// dockerSource returns the Docker Engine API source.
func dockerSource(o edgeOptions, log *zap.Logger, reg prometheus.Registerer) (discovery.Source, error) {
	return nil, errors.New("edge: --docker: the Swarm source is not built in yet")
}
