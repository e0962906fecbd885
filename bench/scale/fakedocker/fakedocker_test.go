package fakedocker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/route"
)

// start serves a fake Swarm and returns it with a Docker client of it.
func start(t *testing.T, o Options) (*Swarm, *client.Client, string) {
	t.Helper()
	s := New(o)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	host := "tcp://" + strings.TrimPrefix(srv.URL, "http://")
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return s, cli, host
}

func TestListings(t *testing.T) {
	s, cli, _ := start(t, Options{Services: 30, Tasks: 4, Network: "edge-net", Nodes: 3})
	ctx := context.Background()
	if at := s.LastRequest(); !at.IsZero() {
		t.Errorf("last request before any: %v, want zero", at)
	}
	before := time.Now()

	ping, err := cli.Ping(ctx)
	if err != nil || ping.APIVersion != APIVersion {
		t.Fatalf("ping = %+v, %v; want API version %s", ping, err, APIVersion)
	}
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 30 {
		t.Fatalf("%d services, want 30", len(svcs))
	}
	if st := svcs[0].ServiceStatus; st == nil || st.RunningTasks != 4 || st.DesiredTasks != 4 {
		t.Errorf("service status = %+v, want 4 running of 4", st)
	}
	if got := svcs[7].Spec.Labels["swarmgate.hosts"]; got != Host(7) {
		t.Errorf("service 7 swarmgate.hosts = %q, want %q", got, Host(7))
	}

	tests := []struct {
		name string
		args filters.Args
		want int
	}{
		{"all", filters.NewArgs(), 120},
		{"running", filters.NewArgs(filters.Arg("desired-state", "running")), 120},
		{"shutdown", filters.NewArgs(filters.Arg("desired-state", "shutdown")), 0},
		{"two services", filters.NewArgs(filters.Arg("service", svcs[1].ID), filters.Arg("service", svcs[2].ID),
			filters.Arg("desired-state", "running")), 8},
		{"by name", filters.NewArgs(filters.Arg("service", ServiceName(3))), 4},
	}
	for _, tt := range tests {
		ts, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: tt.args})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(ts) != tt.want {
			t.Errorf("%s: %d tasks, want %d", tt.name, len(ts), tt.want)
		}
	}

	one, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("id", svcs[5].ID))})
	if err != nil || len(one) != 1 || one[0].ID != svcs[5].ID || one[0].ServiceStatus != nil {
		t.Errorf("service by id = %+v, %v; want service 5 alone, without status", one, err)
	}

	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("scope", "swarm"))})
	if err != nil || len(nets) != 2 {
		t.Fatalf("networks = %+v, %v; want ingress and edge-net", nets, err)
	}
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil || len(nodes) != 3 || nodes[0].Status.State != swarm.NodeStateReady {
		t.Errorf("nodes = %+v, %v; want 3 ready", nodes, err)
	}

	if at := s.LastRequest(); at.Before(before) || at.After(time.Now()) {
		t.Errorf("last request at %v, want between %v and now", at, before)
	}
	got := s.Requests()
	for _, name := range []string{"_ping", "services", "tasks", "networks", "nodes"} {
		if got[name] == 0 {
			t.Errorf("requests[%s] = 0, want counted (all: %v)", name, got)
		}
	}
}

// TestTaskSize checks that a task is about the size of a real one (2 KB of JSON).
func TestTaskSize(t *testing.T) {
	s := New(Options{Services: 10, Tasks: 5})
	s.mu.Lock()
	body, err := json.Marshal(s.tasksLocked(filters.NewArgs()))
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	per := len(body) / 50
	t.Logf("%d bytes of JSON per task", per)
	if per < 1500 || per > 3000 {
		t.Errorf("%d bytes of JSON per task, want about 2 KB", per)
	}
}

func TestBadRequests(t *testing.T) {
	s := New(Options{Services: 1, Tasks: 1})
	for _, tt := range []struct {
		method, target string
		want           int
	}{
		{"POST", "/v1.47/services/create", http.StatusMethodNotAllowed},
		{"GET", "/v1.47/tasks?filters=notjson", http.StatusBadRequest},
		{"GET", `/v1.47/tasks?filters={"colour":{"red":true}}`, http.StatusBadRequest},
		{"GET", "/v1.47/containers/json", http.StatusNotFound},
		{"HEAD", "/_ping", http.StatusOK},
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, nil))
		if w.Code != tt.want {
			t.Errorf("%s %s = %d, want %d (%s)", tt.method, tt.target, w.Code, tt.want, w.Body)
		}
	}
}

// TestChanges drives each change and checks both its event and its effect
// on the listings.
func TestChanges(t *testing.T) {
	s, cli, _ := start(t, Options{Services: 3, Tasks: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "service"))})
	waitSubscribed(t, s)

	next := func(action events.Action, at time.Time) events.Message {
		t.Helper()
		select {
		case ev := <-msgs:
			if ev.Type != events.ServiceEventType || ev.Action != action || ev.TimeNano != at.UnixNano() {
				t.Errorf("event = %+v, want service %s at %d", ev, action, at.UnixNano())
			}
			return ev
		case err := <-errs:
			t.Fatalf("event stream: %v", err)
		case <-ctx.Done():
			t.Fatalf("no %s event", action)
		}
		return events.Message{}
	}
	runningOf := func(id string) int {
		t.Helper()
		ts, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id), filters.Arg("desired-state", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}

	n, at := s.AddService()
	ev := next(events.ActionCreate, at)
	if id := s.ServiceID(n); ev.Actor.ID != id || ev.Actor.Attributes["name"] != ServiceName(n) || runningOf(id) != 2 {
		t.Errorf("added service %d: event actor %+v, %d tasks; want %s with 2 tasks", n, ev.Actor, runningOf(id), id)
	}

	id := s.ServiceID(1)
	at, err := s.ScaleUp(id)
	if err != nil {
		t.Fatal(err)
	}
	next(events.ActionUpdate, at)
	if got := runningOf(id); got != 3 {
		t.Errorf("after scale up: %d running tasks, want 3", got)
	}
	at, err = s.ScaleDown(id)
	if err != nil {
		t.Fatal(err)
	}
	next(events.ActionUpdate, at)
	if got := runningOf(id); got != 2 {
		t.Errorf("after scale down: %d running tasks, want 2", got)
	}
	if svcs, tasks := s.Counts(); svcs != 4 || tasks != 8 {
		t.Errorf("counts = %d services, %d tasks; want 4, 8", svcs, tasks)
	}
	if _, err := s.ScaleUp("nope"); err == nil {
		t.Error("scale up of an unknown service: no error")
	}
}

// TestDiscovery runs the control plane's watcher against the fake: every
// service must yield its route with one endpoint per task on the network.
func TestDiscovery(t *testing.T) {
	_, _, host := start(t, Options{Services: 40, Tasks: 3, Network: "edge-net"})
	src, err := discovery.NewSwarm(discovery.SwarmOptions{Host: host, Network: "edge-net"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Errors) > 0 {
		t.Errorf("label errors: %v", cfg.Errors[0])
	}
	if len(cfg.Routes) != 40 {
		t.Fatalf("%d routes, want 40", len(cfg.Routes))
	}
	for _, r := range cfg.Routes {
		if len(r.Endpoints) != 3 || r.Network != "edge-net" || r.Backend != route.BackendTask {
			t.Errorf("route %s: %d endpoints on %q (backend %s), want 3 tasks on edge-net", r.Service, len(r.Endpoints), r.Network, r.Backend)
		}
	}
}

// waitSubscribed waits until an /events stream is registered, so that no
// event is emitted before anyone listens.
func waitSubscribed(t *testing.T, s *Swarm) {
	t.Helper()
	for range 200 {
		s.mu.Lock()
		n := len(s.subs)
		s.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no /events subscriber")
}
