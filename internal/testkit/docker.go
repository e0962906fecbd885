package testkit

import (
	"context"
	"errors"

	"github.com/docker/docker/client"
)

// SwarmManager returns a client of the local Docker Engine (DOCKER_HOST or
// the socket) if it is a swarm manager, for tests of what the control plane
// keeps in Swarm. The caller closes it.
func SwarmManager() (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	sw, err := cli.SwarmInspect(context.Background())
	if err == nil && sw.ID == "" {
		err = errors.New("not a swarm manager")
	}
	if err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}
