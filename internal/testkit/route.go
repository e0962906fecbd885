package testkit

import (
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// Route returns a route of service for hosts and path over endpoints that a
// test can predict: tasks on port 80 at the default weight, balanced
// round-robin (not the default p2c), with a 5 s timeout. A test sets what
// else it needs on the copy.
func Route(service string, hosts []string, path string, endpoints ...string) route.Route {
	return route.Route{
		Service: service, Hosts: hosts, Path: path, Port: 80, Weight: route.DefaultWeight,
		Backend: route.BackendTask, Balancer: route.BalancerRoundRobin, Timeout: 5 * time.Second, Endpoints: endpoints,
	}
}
