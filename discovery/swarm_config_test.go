package discovery

import (
	"maps"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// Constructed cluster pieces for the pure Config builder.

var (
	netApp     = swarmNetwork{ID: "n-app", Name: "app"}
	netEdge    = swarmNetwork{ID: "n-edge", Name: "edge"}
	netOther   = swarmNetwork{ID: "n-other", Name: "other"}
	netIngress = swarmNetwork{ID: "n-ingress", Name: "ingress", Ingress: true}
	allNets    = []swarmNetwork{netApp, netEdge, netOther, netIngress}
	created    = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

type svcOpt func(*swarmService)

func svc(id, name string, labels map[string]string, opts ...svcOpt) swarmService {
	s := swarmService{ID: id}
	s.CreatedAt = created
	s.Spec.Name = name
	s.Spec.Labels = labels
	one := uint64(1)
	s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &one}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func onNets(nets ...string) svcOpt {
	return func(s *swarmService) {
		for _, n := range nets {
			s.Spec.TaskTemplate.Networks = append(s.Spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: n})
		}
	}
}

func replicas(n uint64) svcOpt {
	return func(s *swarmService) { s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n} }
}

func global(desired uint64) svcOpt {
	return func(s *swarmService) {
		s.Spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
		s.ServiceStatus = &swarm.ServiceStatus{DesiredTasks: desired}
	}
}

func vip(netID, addr string) svcOpt {
	return func(s *swarmService) {
		s.Endpoint.VirtualIPs = append(s.Endpoint.VirtualIPs, swarm.EndpointVirtualIP{NetworkID: netID, Addr: addr})
	}
}

func dnsrr(s *swarmService) {
	s.Spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
}

func updating(s *swarmService) {
	s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}
}

// task returns a task of service sid on node "node-1" with addresses
// "netID=ip" (Swarm writes them with a prefix length).
func task(sid string, desired, state swarm.TaskState, addrs ...string) swarmTask {
	t := swarmTask{ServiceID: sid, NodeID: "node-1", DesiredState: desired}
	t.Status.State = state
	for _, a := range addrs {
		id, ip, _ := strings.Cut(a, "=")
		t.NetworksAttachments = append(t.NetworksAttachments, taskAttachment{
			Network: attachedNetwork{ID: id}, Addresses: []string{ip + "/24"}})
	}
	return t
}

func running(sid string, addrs ...string) swarmTask {
	return task(sid, swarm.TaskStateRunning, swarm.TaskStateRunning, addrs...)
}

func onNode(t swarmTask, node string) swarmTask { t.NodeID = node; return t }

func web(extra ...string) map[string]string {
	l := map[string]string{"swarmgate.hosts": "app.example.org", "swarmgate.port": "8080"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// gotRoute is the part of a Route the source fills in.
type gotRoute struct {
	ID        string
	Network   string
	Endpoints []string
}

type gotErr struct{ Service, Label, Reason string } // Reason: a substring

func TestBuildSwarmConfig(t *testing.T) {
	tests := []struct {
		name       string
		st         swarmState
		edgeNet    string
		routes     []gotRoute
		errs       []gotErr
		converging []string
	}{
		{
			name: "task endpoints: only tasks wanted and running, on the route's network, sorted",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-app"), replicas(3))},
				Tasks: []swarmTask{
					running("s1", "n-app=10.0.1.9"),
					running("s1", "n-app=10.0.1.10", "n-other=10.0.9.10"),
					task("s1", swarm.TaskStateRunning, swarm.TaskStateStarting, "n-app=10.0.1.11"),  // health check pending
					task("s1", swarm.TaskStateShutdown, swarm.TaskStateRunning, "n-app=10.0.1.12"),  // leaving
					task("s1", swarm.TaskStateRunning, swarm.TaskStatePreparing, "n-app=10.0.1.13"), // pulling
					running("other-service", "n-app=10.0.1.14"),
				},
				Networks: allNets,
			},
			routes:     []gotRoute{{"web", "app", []string{"10.0.1.10:8080", "10.0.1.9:8080"}}},
			converging: []string{"web"},
		},
		{
			name: "tasks on a node that is down are out; a converged service does not poll",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-app"), replicas(2))},
				Tasks: []swarmTask{
					running("s1", "n-app=10.0.1.2"),
					onNode(running("s1", "n-app=10.0.1.3"), "node-2"),
				},
				Networks: allNets,
				Nodes: []swarmNode{
					{ID: "node-1", Status: swarm.NodeStatus{State: swarm.NodeStateReady}},
					{ID: "node-2", Status: swarm.NodeStatus{State: swarm.NodeStateDown}},
				},
			},
			routes: []gotRoute{{"web", "app", []string{"10.0.1.2:8080"}}},
		},
		{
			name: "zero tasks: the route stays, with no endpoints (503)",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-app"), replicas(0))},
				Networks: allNets,
			},
			routes: []gotRoute{{"web", "app", nil}},
		},
		{
			name: "fewer tasks running than replicas: converging",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-app"), replicas(3))},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.2")},
				Networks: allNets,
			},
			routes:     []gotRoute{{"web", "app", []string{"10.0.1.2:8080"}}},
			converging: []string{"web"},
		},
		{
			name: "an update in progress: converging",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-app"), updating)},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.2")},
				Networks: allNets,
			},
			routes:     []gotRoute{{"web", "app", []string{"10.0.1.2:8080"}}},
			converging: []string{"web"},
		},
		{
			name: "global service: converged when every desired task runs",
			st: swarmState{
				Services: []swarmService{
					svc("s1", "a", web("swarmgate.hosts", "a.example.org"), onNets("n-app"), global(2)),
					svc("s2", "b", web("swarmgate.hosts", "b.example.org"), onNets("n-app"), global(2)),
				},
				Tasks: []swarmTask{
					running("s1", "n-app=10.0.1.2"), running("s1", "n-app=10.0.1.3"),
					running("s2", "n-app=10.0.1.4"),
				},
				Networks: allNets,
			},
			routes: []gotRoute{
				{"a", "app", []string{"10.0.1.2:8080", "10.0.1.3:8080"}},
				{"b", "app", []string{"10.0.1.4:8080"}},
			},
			converging: []string{"b"},
		},
		{
			name: "the edge's network wins over the service's others; ingress never counts",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-app", "n-edge", "n-ingress"))},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.2", "n-edge=10.0.2.2")},
				Networks: allNets,
			},
			edgeNet: "edge",
			routes:  []gotRoute{{"web", "edge", []string{"10.0.2.2:8080"}}},
		},
		{
			name: "the service's only network when it is not on the edge's; ingress ignored",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-ingress", "n-app"))},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.2")},
				Networks: allNets,
			},
			edgeNet: "edge",
			routes:  []gotRoute{{"web", "app", []string{"10.0.1.2:8080"}}},
		},
		{
			name: "the labelled network wins over the edge's, by name or ID",
			st: swarmState{
				Services: []swarmService{
					svc("s1", "a", web("swarmgate.hosts", "a.example.org", "swarmgate.network", "app"), onNets("n-app", "n-edge")),
					svc("s2", "b", web("swarmgate.hosts", "b.example.org", "swarmgate.network", "n-other"), onNets("n-other", "n-edge")),
				},
				Tasks: []swarmTask{
					running("s1", "n-app=10.0.1.2", "n-edge=10.0.2.2"),
					running("s2", "n-other=10.0.3.2", "n-edge=10.0.2.3"),
				},
				Networks: allNets,
			},
			edgeNet: "edge",
			routes: []gotRoute{
				{"a", "app", []string{"10.0.1.2:8080"}},
				{"b", "other", []string{"10.0.3.2:8080"}},
			},
		},
		{
			name: "named routes resolve their own networks and ports",
			st: swarmState{
				Services: []swarmService{svc("s1", "shop", map[string]string{
					"swarmgate.hosts": "shop.example.org", "swarmgate.port": "80",
					"swarmgate.routes.admin.hosts": "admin.example.org", "swarmgate.routes.admin.port": "9000",
					"swarmgate.routes.admin.network": "other",
				}, onNets("n-app", "n-other"))},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.2", "n-other=10.0.3.2")},
				Networks: allNets,
			},
			edgeNet: "app",
			routes: []gotRoute{
				{"shop", "app", []string{"10.0.1.2:80"}},
				{"shop/admin", "other", []string{"10.0.3.2:9000"}},
			},
		},
		{
			name: "several networks and none is the edge's: an error on that service only",
			st: swarmState{
				Services: []swarmService{
					svc("s1", "ambiguous", web("swarmgate.hosts", "a.example.org"), onNets("n-app", "n-other")),
					svc("s2", "fine", web("swarmgate.hosts", "f.example.org"), onNets("n-app")),
				},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.2", "n-other=10.0.3.2"), running("s2", "n-app=10.0.1.3")},
				Networks: allNets,
			},
			routes: []gotRoute{{"fine", "app", []string{"10.0.1.3:8080"}}},
			errs:   []gotErr{{"ambiguous", "swarmgate.network", "several networks (app, other)"}},
		},
		{
			name: "no overlay network at all: an error",
			st: swarmState{
				Services: []swarmService{svc("s1", "lonely", web(), onNets("n-ingress"))},
				Networks: allNets,
			},
			edgeNet: "edge",
			errs:    []gotErr{{"lonely", "swarmgate.network", `attach it to "edge"`}},
		},
		{
			name: "labelled network the service is not on, or that does not exist",
			st: swarmState{
				Services: []swarmService{
					svc("s1", "a", web("swarmgate.hosts", "a.example.org", "swarmgate.network", "other"), onNets("n-app")),
					svc("s2", "b", web("swarmgate.hosts", "b.example.org", "swarmgate.routes.x.hosts", "x.example.org",
						"swarmgate.routes.x.network", "nope"), onNets("n-app")),
				},
				Networks: allNets,
			},
			errs: []gotErr{
				{"a", "swarmgate.network", `not attached to network "other" (attached: app)`},
				{"b", "swarmgate.routes.x.network", `no overlay network "nope"`},
			},
		},
		{
			name: "Interlock network label is named in its error",
			st: swarmState{
				Services: []swarmService{svc("s1", "il", map[string]string{
					"com.docker.lb.hosts": "il.example.org", "com.docker.lb.port": "80", "com.docker.lb.network": "edge",
				}, onNets("n-app"))},
				Networks: allNets,
			},
			errs: []gotErr{{"il", "com.docker.lb.network", `not attached to network "edge"`}},
		},
		{
			name: "Interlock labels resolve like swarmgate's",
			st: swarmState{
				Services: []swarmService{svc("s1", "il", map[string]string{
					"com.docker.lb.hosts": "il.example.org", "com.docker.lb.port": "80", "com.docker.lb.network": "app",
				}, onNets("n-app", "n-other"))},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.2", "n-other=10.0.3.2")},
				Networks: allNets,
			},
			routes: []gotRoute{{"il", "app", []string{"10.0.1.2:80"}}},
		},
		{
			name: "vip backend: the virtual IP on the chosen network, whatever the tasks",
			st: swarmState{
				Services: []swarmService{svc("s1", "v", web("swarmgate.backend", "vip"), onNets("n-app", "n-edge"),
					vip("n-ingress", "10.255.0.5/16"), vip("n-app", "10.0.1.5/24"), vip("n-edge", "10.0.2.5/24"))},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.7", "n-edge=10.0.2.7")},
				Networks: allNets,
			},
			edgeNet: "edge",
			routes:  []gotRoute{{"v", "edge", []string{"10.0.2.5:8080"}}},
		},
		{
			name: "vip backend before Swarm allocated the VIP: no endpoint yet, converging",
			st: swarmState{
				Services: []swarmService{svc("s1", "v", web("swarmgate.backend", "vip"), onNets("n-app"))},
				Tasks:    []swarmTask{running("s1", "n-app=10.0.1.7")},
				Networks: allNets,
			},
			routes:     []gotRoute{{"v", "app", nil}},
			converging: []string{"v"},
		},
		{
			name: "vip backend on a dnsrr service: an error",
			st: swarmState{
				Services: []swarmService{svc("s1", "v", web("swarmgate.backend", "vip"), onNets("n-app"), dnsrr)},
				Networks: allNets,
			},
			errs: []gotErr{{"v", "swarmgate.backend", "endpoint mode dnsrr"}},
		},
		{
			name: "bad labels skip that service only; unlabelled services are ignored; output sorted by name",
			st: swarmState{
				Services: []swarmService{
					svc("s3", "zeta", web("swarmgate.hosts", "z.example.org"), onNets("n-app")),
					svc("s1", "bad", web("swarmgate.port", "eighty"), onNets("n-app")),
					svc("s2", "plain", map[string]string{"com.example.team": "x"}, onNets("n-app"), replicas(5)),
					svc("s4", "alpha", web("swarmgate.hosts", "a.example.org"), onNets("n-app")),
				},
				Tasks:    []swarmTask{running("s3", "n-app=10.0.1.3"), running("s4", "n-app=10.0.1.4")},
				Networks: allNets,
			},
			routes: []gotRoute{
				{"alpha", "app", []string{"10.0.1.4:8080"}},
				{"zeta", "app", []string{"10.0.1.3:8080"}},
			},
			errs: []gotErr{{"bad", "swarmgate.port", ""}},
		},
		{
			name: "a network target not in the list is still the service's only network",
			st: swarmState{
				Services: []swarmService{svc("s1", "web", web(), onNets("n-new"))},
				Tasks:    []swarmTask{running("s1", "n-new=10.0.7.2")},
				Networks: allNets,
			},
			routes: []gotRoute{{"web", "n-new", []string{"10.0.7.2:8080"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := buildSwarmConfig(tt.st, tt.edgeNet)
			var routes []gotRoute
			for _, r := range res.Config.Routes {
				routes = append(routes, gotRoute{r.ID(), r.Network, r.Endpoints})
			}
			if !reflect.DeepEqual(routes, tt.routes) {
				t.Errorf("routes:\n got %+v\nwant %+v", routes, tt.routes)
			}
			if len(res.Config.Errors) != len(tt.errs) {
				t.Fatalf("errors: got %v, want %d like %+v", res.Config.Errors, len(tt.errs), tt.errs)
			}
			for i, e := range res.Config.Errors {
				w := tt.errs[i]
				if e.Service != w.Service || e.Label != w.Label || !strings.Contains(e.Reason, w.Reason) {
					t.Errorf("error %d: got %v, want service %q label %s reason containing %q", i, e, w.Service, w.Label, w.Reason)
				}
			}
			if !reflect.DeepEqual(res.Converging, tt.converging) {
				t.Errorf("converging: got %v, want %v", res.Converging, tt.converging)
			}
			// Building twice gives an equal Config: Run compares them.
			if again := buildSwarmConfig(tt.st, tt.edgeNet); !reflect.DeepEqual(again.Config, res.Config) {
				t.Errorf("two builds of one listing differ")
			}
		})
	}
}

func TestBuildSwarmConfigCopiesServiceIdentity(t *testing.T) {
	st := swarmState{
		Services: []swarmService{svc("id-1", "web", web(), onNets("n-app"))},
		Tasks:    []swarmTask{running("id-1", "n-app=10.0.1.2")},
		Networks: allNets,
	}
	res := buildSwarmConfig(st, "")
	if len(res.Config.Routes) != 1 {
		t.Fatalf("routes: %+v", res.Config.Routes)
	}
	r := res.Config.Routes[0]
	if r.ServiceID != "id-1" || !r.CreatedAt.Equal(created) || r.Service != "web" || r.Port != 8080 ||
		!reflect.DeepEqual(r.Hosts, []string{"app.example.org"}) {
		t.Errorf("route: %+v", r)
	}
}

func TestAddrIP(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.1.5/24": "10.0.1.5", "10.0.1.5": "10.0.1.5", "fd00::5/64": "fd00::5", "": "", "junk": "",
	} {
		if got := addrIP(in); got != want {
			t.Errorf("addrIP(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEndpointOf checks that the netip form of an endpoint is what net's
// parsers and JoinHostPort make of the same address.
func TestEndpointOf(t *testing.T) {
	for _, in := range []string{
		"10.0.1.5/24", "10.0.1.5", "10.0.1.5/32", "fd00::5/64", "fd00::5", "::ffff:10.0.0.7/120", "::ffff:10.0.0.7",
		"fe80::1%eth0", "fe80::1%eth0/64", "10.0.1.5/024", "010.0.1.5/24", "10.0.1.5/33", "", "junk", "10.0.1/24",
	} {
		for _, port := range []int{8080, 0, 65535, 70000} {
			want := ""
			if ip := addrIP(in); ip != "" {
				want = net.JoinHostPort(ip, strconv.Itoa(port))
			}
			if got := endpointOf(in, port); got != want {
				t.Errorf("endpointOf(%q, %d) = %q, want %q", in, port, got, want)
			}
		}
	}
}

// TestBuildSwarmConfigReusesParsedLabels checks the parse memo: the same
// Config with it and without, labels parsed again when the version moves,
// and services gone forgotten.
func TestBuildSwarmConfigReusesParsedLabels(t *testing.T) {
	a := svc("id-a", "a", web(), onNets("n-app"))
	a.Version.Index = 1
	b := svc("id-b", "b", web("swarmgate.weight", "heavy"), onNets("n-app"))
	b.Version.Index = 1
	st := swarmState{Services: []swarmService{a, b}, Tasks: []swarmTask{running("id-a", "n-app=10.0.1.2")}, Networks: allNets}
	plain := buildSwarmConfig(st, "")
	st.Parsed = map[string]parsedLabels{}
	for range 2 {
		if got := buildSwarmConfig(st, ""); !reflect.DeepEqual(got, plain) {
			t.Fatalf("with the memo:\n got %+v\nwant %+v", got, plain)
		}
	}
	if len(st.Parsed) != 2 {
		t.Errorf("memo holds %d services, want 2", len(st.Parsed))
	}
	st.Services[0].Spec.Labels = web("swarmgate.port", "9090")
	if r := buildSwarmConfig(st, "").Config.Routes; r[0].Port != 8080 {
		t.Errorf("same version, labels parsed again: port %d", r[0].Port)
	}
	st.Services[0].Version.Index = 2
	if r := buildSwarmConfig(st, "").Config.Routes; r[0].Port != 9090 {
		t.Errorf("new version, old labels kept: port %d", r[0].Port)
	}
	st.Services = st.Services[:1]
	buildSwarmConfig(st, "")
	if _, ok := st.Parsed["id-b"]; ok || len(st.Parsed) != 1 {
		t.Errorf("memo after id-b left: %v", slices.Collect(maps.Keys(st.Parsed)))
	}
}
