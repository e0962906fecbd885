package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestControlPlaneFailover kills each control plane replica in turn (the
// edge streams from one of them: one of the two kills is its own) under
// constant load: no request fails, and a service created after each kill
// is routed through the replica that is left.
func TestControlPlaneFailover(t *testing.T) {
	const host = "cp-steady.e2e.test"
	s := createEcho(t, "cp-steady", 2, map[string]string{"swarmgate.hosts": host, "swarmgate.port": "8000"})
	waitTasksRunning(t, s.name, 2, 60*time.Second)
	waitAnswering(t, host, 2)
	waitControlReplicas(t)
	replicas := containers(controlService)
	if len(replicas) != controlReplicas {
		t.Fatalf("%d control plane containers running, want %d", len(replicas), controlReplicas)
	}
	load := startLoad(scenarioLoad(host))
	for i, id := range replicas {
		mustDocker(t, "kill", id)
		name := fmt.Sprintf("cp-after-%d", i)
		createEcho(t, name, 1, map[string]string{"swarmgate.hosts": name + ".e2e.test", "swarmgate.port": "8000"})
		took := waitStatus(t, name+".e2e.test", "/", 200, 60*time.Second)
		t.Logf("replica %d of %d killed: a new service answered after %s", i+1, len(replicas), took.Round(time.Millisecond))
		waitControlReplicas(t) // Swarm replaces the killed one
	}
	time.Sleep(loadTail)
	assertZero(t, "control plane failover", load.stop(t))
}

// waitControlReplicas waits until every control plane replica runs and is
// ready.
func waitControlReplicas(t *testing.T) {
	t.Helper()
	waitFor(t, 90*time.Second, "control plane replicas running and ready", func() bool {
		ids := containers(controlService)
		if len(ids) != controlReplicas {
			return false
		}
		for _, id := range ids {
			// FROM scratch: nothing to exec; the replica's own log says
			// when it holds the Swarm's configuration.
			logs, _ := run("sh", "-c", "docker logs "+id+" 2>&1")
			if !strings.Contains(logs, "first configuration held") {
				return false
			}
		}
		return true
	})
}
