package discovery

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// memoCluster is a cluster held as swarmCache holds it: services updated in
// place, a service's tasks and the network and node listings replaced, never
// modified, when they change.
type memoCluster struct {
	rng      *rand.Rand
	services []swarmService
	tasks    map[string][]swarmTask
	networks []swarmNetwork
	nodes    []swarmNode
	next     int
	version  uint64
}

// labelsFor returns one of the kinds of label sets a cluster holds: a
// plain route, named routes, a VIP backend, a network named, an error, or
// nothing published.
func (c *memoCluster) labelsFor(n int) map[string]string {
	host := fmt.Sprintf("s%d.example.org", n)
	switch c.rng.IntN(8) {
	case 0:
		return map[string]string{"swarmgate.port": "x"} // a label error
	case 1:
		return map[string]string{"swarmgate.routes.a.hosts": host, "swarmgate.routes.a.port": "80",
			"swarmgate.routes.b.hosts": "b." + host, "swarmgate.routes.b.port": "81"}
	case 2:
		return web("swarmgate.hosts", host, "swarmgate.backend", "vip")
	case 3:
		return web("swarmgate.hosts", host, "swarmgate.network", "edge")
	case 4:
		return map[string]string{"com.example.unrelated": "yes"}
	}
	return web("swarmgate.hosts", host, "swarmgate.port", fmt.Sprint(8000+c.rng.IntN(3)))
}

func (c *memoCluster) newService() swarmService {
	c.next++
	c.version++
	id := fmt.Sprintf("id-%03d", c.next)
	var nets []string
	switch c.rng.IntN(4) {
	case 0:
		nets = []string{"n-app"}
	case 1:
		nets = []string{"n-app", "n-edge"}
	case 2:
		nets = []string{"n-edge", "n-ingress"}
	default:
		nets = []string{"n-app", "n-other"} // several, none the edge's
	}
	opts := []svcOpt{onNets(nets...), replicas(uint64(c.rng.IntN(3))), vip("n-app", fmt.Sprintf("10.1.0.%d/24", c.next%250))}
	if c.rng.IntN(5) == 0 {
		opts = append(opts, updating)
	}
	// A name that may sort before those already there.
	s := svc(id, fmt.Sprintf("svc-%02d-%03d", c.rng.IntN(30), c.next), c.labelsFor(c.next), opts...)
	s.Version.Index = c.version
	s.UpdatedAt = created.Add(time.Duration(c.version) * time.Second)
	return s
}

func (c *memoCluster) newTasks(sid string) []swarmTask {
	var ts []swarmTask
	for range c.rng.IntN(4) {
		c.next++
		ip := fmt.Sprintf("10.0.%d.%d", c.next/250%250, c.next%250)
		states := []swarm.TaskState{swarm.TaskStateRunning, swarm.TaskStateRunning, swarm.TaskStateStarting}
		t := task(sid, swarm.TaskStateRunning, states[c.rng.IntN(len(states))], "n-app="+ip, "n-edge="+ip)
		t.NodeID = fmt.Sprintf("node-%d", c.rng.IntN(3))
		t.Status.Timestamp = created.Add(time.Duration(c.next) * time.Second)
		ts = append(ts, t)
	}
	return ts
}

// mutate applies one random change and says which.
func (c *memoCluster) mutate() string {
	n := len(c.services)
	switch op := c.rng.IntN(12); {
	case op < 3 && n > 0:
		s := &c.services[c.rng.IntN(n)]
		c.tasks[s.ID] = c.newTasks(s.ID) // a poll's tasks replace the slice
		return "tasks of " + s.Spec.Name
	case op == 3 && n > 0:
		i := c.rng.IntN(n)
		s := c.services[i] // an update: a new version in place
		s.Spec.Labels = c.labelsFor(c.rng.IntN(1000))
		c.version++
		s.Version.Index = c.version
		s.UpdatedAt = s.UpdatedAt.Add(time.Second)
		c.services[i] = s
		return "update of " + s.Spec.Name
	case op == 4 && n > 0:
		i := c.rng.IntN(n)
		s := c.services[i] // a status that moved, the version not
		s.ServiceStatus = &swarm.ServiceStatus{DesiredTasks: uint64(c.rng.IntN(3))}
		if s.UpdateStatus == nil {
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}
		} else {
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted}
		}
		c.services[i] = s
		return "status of " + s.Spec.Name
	case op == 5:
		s := c.newService()
		c.services = append(c.services, s)
		if ts := c.newTasks(s.ID); len(ts) > 0 {
			c.tasks[s.ID] = ts
		}
		return "create " + s.Spec.Name
	case op == 6 && n > 0:
		i := c.rng.IntN(n)
		gone := c.services[i]
		c.services = slices.Delete(c.services, i, i+1)
		delete(c.tasks, gone.ID)
		return "remove " + gone.Spec.Name
	case op == 7:
		nodes := []swarmNode{{ID: "node-0"}, {ID: "node-1"}, {ID: "node-2"}}
		nodes[c.rng.IntN(3)].Status.State = swarm.NodeStateDown
		c.nodes = nodes
		return "node down"
	case op == 8:
		c.networks = slices.Clone(c.networks) // listed again, the same
		return "networks listed"
	case op == 9:
		if len(c.networks) == len(allNets) {
			c.networks = slices.DeleteFunc(slices.Clone(allNets), func(n swarmNetwork) bool { return n.ID == "n-edge" })
		} else {
			c.networks = allNets
		}
		return "network removed or back"
	case op == 10:
		for id, ts := range c.tasks { // a full listing: every slice new
			c.tasks[id] = slices.Clone(ts)
		}
		return "full listing"
	}
	return "nothing"
}

// TestBuildSwarmConfigMemoMatchesFullBuild checks the build memo against a
// build from scratch through random sequences of changes: the same Config
// and converging services, and the services it says changed are those whose
// routes or label errors differ from the Config before.
func TestBuildSwarmConfigMemoMatchesFullBuild(t *testing.T) {
	for seed := range uint64(30) {
		c := &memoCluster{rng: rand.New(rand.NewPCG(seed, 3)), tasks: map[string][]swarmTask{}, networks: allNets}
		for range 12 {
			s := c.newService()
			c.services = append(c.services, s)
			if ts := c.newTasks(s.ID); len(ts) > 0 {
				c.tasks[s.ID] = ts
			}
		}
		memo, parsed := newSwarmMemo(), map[string]parsedLabels{}
		var before swarmResult
		for step := range 80 {
			what := "first build"
			if step > 0 {
				what = c.mutate()
			}
			where := fmt.Sprintf("seed %d step %d (%s)", seed, step, what)
			st := swarmState{Services: c.services, TaskMap: c.tasks, Networks: c.networks, Nodes: c.nodes}
			scratch := buildSwarmConfig(st, "edge")
			st.Parsed, st.Built = parsed, memo
			got := buildSwarmConfig(st, "edge")
			if !reflect.DeepEqual(got.Config, scratch.Config) {
				t.Fatalf("%s: with the memo\n got %+v\nwant %+v", where, got.Config, scratch.Config)
			}
			if !slices.Equal(got.Converging, scratch.Converging) || !slices.Equal(got.ConvergingIDs, scratch.ConvergingIDs) {
				t.Fatalf("%s: converging %v %v, want %v %v", where, got.Converging, got.ConvergingIDs, scratch.Converging, scratch.ConvergingIDs)
			}
			want := changedServices(before.Config, scratch.Config)
			if !maps.Equal(got.Changed, want) {
				t.Fatalf("%s: changed %v, want %v", where, slices.Sorted(maps.Keys(got.Changed)), slices.Sorted(maps.Keys(want)))
			}
			if len(memo.services) != len(c.services) {
				t.Fatalf("%s: the memo holds %d services, the cluster %d", where, len(memo.services), len(c.services))
			}
			before = scratch
		}
	}
}

// TestBuildSwarmConfigMemoComputesOnlyWhatChanged checks that the memo is
// used: after a change to one service's tasks, the other services' results
// are those of the build before (the same slices), and that service's are
// new.
func TestBuildSwarmConfigMemoComputesOnlyWhatChanged(t *testing.T) {
	a := svc("id-a", "a", web("swarmgate.hosts", "a.example.org"), onNets("n-app"))
	b := svc("id-b", "b", web("swarmgate.hosts", "b.example.org"), onNets("n-app"))
	a.Version.Index, b.Version.Index = 1, 2
	tasks := map[string][]swarmTask{
		"id-a": {running("id-a", "n-app=10.0.1.2")},
		"id-b": {running("id-b", "n-app=10.0.1.3")},
	}
	st := swarmState{Services: []swarmService{a, b}, TaskMap: tasks, Networks: allNets,
		Parsed: map[string]parsedLabels{}, Built: newSwarmMemo()}
	first := buildSwarmConfig(st, "")
	if !maps.Equal(first.Changed, map[string]bool{"a": true, "b": true}) {
		t.Fatalf("first build changed %v", first.Changed)
	}
	tasks["id-b"] = []swarmTask{running("id-b", "n-app=10.0.1.3"), running("id-b", "n-app=10.0.1.4")}
	next := buildSwarmConfig(st, "")
	if !maps.Equal(next.Changed, map[string]bool{"b": true}) {
		t.Fatalf("changed %v, want b", next.Changed)
	}
	if &next.Config.Routes[0].Endpoints[0] != &first.Config.Routes[0].Endpoints[0] {
		t.Error("a's endpoints computed again")
	}
	if got := next.Config.Routes[1].Endpoints; !slices.Equal(got, []string{"10.0.1.3:8080", "10.0.1.4:8080"}) {
		t.Errorf("b's endpoints %v", got)
	}
	if again := buildSwarmConfig(st, ""); len(again.Changed) != 0 {
		t.Errorf("nothing changed, the build says %v", again.Changed)
	}
}
