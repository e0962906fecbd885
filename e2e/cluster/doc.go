// Package cluster is the multi-node end-to-end suite: swarmgate's production
// stack on a three-node swarm made by scripts/cluster.sh (a manager running
// the control plane, two workers labelled as edge nodes), with HAProxy on
// the host in front of the edges' host-mode ports as an operator's load
// balancer, and faults: a node unplugged and killed, a partition, a starved
// CPU, the control plane killed, edges updated.
//
// Its tests carry the build tag "cluster" so that `go test ./e2e/...` on the
// single-node engine leaves them out; run them with `make e2e-cluster`.
package cluster
