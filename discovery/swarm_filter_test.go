package discovery

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/route"
)

func TestSwarmCacheMerge(t *testing.T) {
	ts := func(sid string, n int) []swarmTask {
		out := make([]swarmTask, n)
		for i := range out {
			out[i] = swarmTask{ID: sid + "-t" + string(rune('0'+i)), ServiceID: sid}
		}
		return out
	}
	s := func(id string, version uint64) swarmService {
		v := swarmService{ID: id}
		v.Spec.Name = "svc-" + id
		v.Version.Index = version
		return v
	}
	tests := []struct {
		name      string
		ids       []string
		svcs      []swarmService
		tasks     map[string][]swarmTask
		wantSvcs  []swarmService
		wantTasks map[string]int // tasks per service
	}{
		{
			name:      "polled service replaced, others untouched",
			ids:       []string{"b"},
			svcs:      []swarmService{s("b", 2)},
			tasks:     map[string][]swarmTask{"b": ts("b", 3)},
			wantSvcs:  []swarmService{s("a", 1), s("b", 2), s("c", 1)},
			wantTasks: map[string]int{"a": 1, "b": 3, "c": 1},
		},
		{
			name:      "polled service with no running task",
			ids:       []string{"a"},
			svcs:      []swarmService{s("a", 2)},
			tasks:     map[string][]swarmTask{},
			wantSvcs:  []swarmService{s("a", 2), s("b", 1), s("c", 1)},
			wantTasks: map[string]int{"b": 1, "c": 1},
		},
		{
			name:      "polled service gone",
			ids:       []string{"a", "c"},
			svcs:      []swarmService{s("c", 5)},
			tasks:     map[string][]swarmTask{"c": ts("c", 2)},
			wantSvcs:  []swarmService{s("b", 1), s("c", 5)},
			wantTasks: map[string]int{"b": 1, "c": 2},
		},
		{
			name:      "nothing polled",
			wantSvcs:  []swarmService{s("a", 1), s("b", 1), s("c", 1)},
			wantTasks: map[string]int{"a": 1, "b": 1, "c": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &swarmCache{
				services: []swarmService{s("a", 1), s("b", 1), s("c", 1)},
				tasks:    map[string][]swarmTask{"a": ts("a", 1), "b": ts("b", 1), "c": ts("c", 1)},
				listed:   true,
			}
			c.reindex()
			c.merge(tt.ids, tt.svcs, tt.tasks)
			if !reflect.DeepEqual(c.services, tt.wantSvcs) {
				t.Errorf("services: got %+v, want %+v", c.services, tt.wantSvcs)
			}
			got := map[string]int{}
			for id, ts := range c.tasks {
				got[id] = len(ts)
			}
			if !reflect.DeepEqual(got, tt.wantTasks) {
				t.Errorf("tasks per service: got %v, want %v", got, tt.wantTasks)
			}
			for i, svc := range c.services {
				if c.index[svc.ID] != i {
					t.Errorf("index of %s: %d, want %d", svc.ID, c.index[svc.ID], i)
				}
			}
		})
	}
}

func TestChangeStamp(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	a := svc("id-a", "a", nil)
	a.UpdatedAt = t0
	b := svc("id-b", "b", nil)
	b.UpdatedAt = t0.Add(time.Second)
	ta := task("id-a", swarm.TaskStateRunning, swarm.TaskStateRunning)
	ta.Status.Timestamp = t0.Add(5 * time.Second)
	st := swarmState{Services: []swarmService{a, b}, Tasks: []swarmTask{ta}}
	tests := []struct {
		name  string
		names []string
		want  time.Time
	}{
		{"task newer than the service", []string{"a"}, t0.Add(5 * time.Second)},
		{"service update only", []string{"b"}, t0.Add(time.Second)},
		{"several: the earliest", []string{"a", "b"}, t0.Add(time.Second)},
		{"removed service: unknown", []string{"gone"}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := map[string]bool{}
			for _, n := range tt.names {
				names[n] = true
			}
			if got := changeStamp(st, names); !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangedServices(t *testing.T) {
	r := func(svc string, eps ...string) route.Route {
		return route.Route{Service: svc, Port: 80, Endpoints: eps}
	}
	old := route.Config{Routes: []route.Route{r("a", "1"), r("b", "2"), r("c")}}
	next := route.Config{
		Routes: []route.Route{r("a", "1"), r("b", "2", "3"), r("d")},
		Errors: []*route.LabelError{{Service: "e", Label: "swarmgate.port", Value: "x", Reason: "bad"}},
	}
	got := changedServices(old, next)
	want := map[string]bool{"b": true, "c": true, "d": true, "e": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// apiRecorder is an HTTP front to the engine that records every request's
// path and filters, and can answer the next filtered task listing 404 (a
// service removed between the service and the task listing of a poll).
type apiRecorder struct {
	mu       sync.Mutex
	requests []apiRequest
	fail404  bool
}

type apiRequest struct {
	path    string
	filters filters.Args
}

func (a *apiRecorder) ofPath(suffix string) []apiRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []apiRequest
	for _, r := range a.requests {
		if strings.HasSuffix(r.path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

func startAPIRecorder(t *testing.T, e *swarmEnv) (*apiRecorder, string) {
	t.Helper()
	if !strings.HasPrefix(e.host, "unix://") {
		t.Skipf("the recorder forwards to a unix socket; DOCKER_HOST is %s", e.host)
	}
	rec := &apiRecorder{}
	sock := strings.TrimPrefix(e.host, "unix://")
	upstream := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport:     upstream,
		FlushInterval: -1, // the event stream
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _ := filters.FromJSON(r.URL.Query().Get("filters"))
		rec.mu.Lock()
		rec.requests = append(rec.requests, apiRequest{path: r.URL.Path, filters: f})
		fail := rec.fail404 && strings.HasSuffix(r.URL.Path, "/tasks") && f.Contains("service")
		if fail {
			rec.fail404 = false
		}
		rec.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"service sgtest-gone not found"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { front.CloseClientConnections(); front.Close(); upstream.CloseIdleConnections() })
	return rec, "tcp://" + front.Listener.Addr().String()
}

// TestSwarmPollsOnlyConvergingServices checks that while a service
// converges, fast polls list that service and its tasks only, merge them into
// the last listing (the settled service keeps its endpoint in every Config),
// and that only full listings list the tasks of the whole cluster.
func TestSwarmPollsOnlyConvergingServices(t *testing.T) {
	e := needSwarm(t)
	testImage(t)
	nw := e.network("filter")
	settled := e.service("settled", nw, 1, "swarmgate.hosts=settled.sgtest.example", "swarmgate.port=8080")
	for deadline := time.Now().Add(60 * time.Second); len(e.runningTasks(settled)) != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the settled service did not start")
		}
	}

	api, host := startAPIRecorder(t, e)
	s := newTestSwarm(t, SwarmOptions{Host: host, Network: nw, Registerer: prometheus.NewRegistry(), Resync: time.Hour})
	rec := newRecorder()
	startRun(t, s, rec)
	rec.waitFor(t, 0, 10*time.Second, "the settled service", endpointCount(settled, 1))
	waitQuiet(t, s, rec)

	from := rec.count()
	moving := e.service("moving", nw, 2, "swarmgate.hosts=moving.sgtest.example", "swarmgate.port=8080")
	_, i, _ := rec.waitFor(t, from, 60*time.Second, "2 endpoints of the new service", endpointCount(moving, 2))
	waitQuiet(t, s, rec)

	movingID := e.docker("service", "inspect", "--format", "{{.ID}}", moving)
	settledID := e.docker("service", "inspect", "--format", "{{.ID}}", settled)
	rec.mu.Lock()
	for j, c := range rec.configs[from:] {
		if r := routeOf(c, settled); r == nil || len(r.Endpoints) != 1 {
			t.Errorf("config %d: the settled service lost its endpoint while the other converged: %+v", from+j, r)
		}
	}
	rec.mu.Unlock()

	// Other tests share the engine: only this test's services in a
	// filtered listing are this test's business.
	ours := func(ids []string) []string {
		return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id != movingID && id != settledID })
	}
	var filtered, whole int
	for _, r := range api.ofPath("/tasks") {
		ids := r.filters.Get("service")
		if !r.filters.ExactMatch("desired-state", "running") {
			t.Errorf("task listing without desired-state=running: %v", r.filters)
		}
		if len(ids) == 0 {
			whole++
			continue
		}
		if ids = ours(ids); len(ids) == 0 {
			continue
		}
		filtered++
		if slices.Contains(ids, settledID) {
			t.Errorf("a poll listed the tasks of the settled service: %v", ids)
		}
		if !slices.Contains(ids, movingID) {
			t.Errorf("a poll listed services other than the converging one: %v (want %s)", ids, movingID)
		}
	}
	for _, r := range api.ofPath("/services") {
		if ids := ours(r.filters.Get("id")); len(ids) > 0 && !slices.Equal(ids, []string{movingID}) {
			t.Errorf("a poll listed services %v, want only %s", ids, movingID)
		}
	}
	fulls := int(metricValue(s.m.syncs.WithLabelValues("full")))
	polls := int(metricValue(s.m.syncs.WithLabelValues("poll")))
	t.Logf("%d full listings, %d polls; task listings: %d filtered, %d whole cluster; %d updates for the new service",
		fulls, polls, filtered, whole, i-from+1)
	if filtered == 0 || polls == 0 {
		t.Errorf("no filtered poll while a service converged (%d polls, %d filtered task listings)", polls, filtered)
	}
	if whole != fulls {
		t.Errorf("%d listings of every task, want one per full listing (%d)", whole, fulls)
	}
}

// TestSwarmPollOfARemovedService answers a poll's task listing 404, as
// the engine does when a polled service is removed between the two calls:
// the source lists the whole cluster instead, with no error and no outage.
func TestSwarmPollOfARemovedService(t *testing.T) {
	e := needSwarm(t)
	testImage(t)
	nw := e.network("gone")
	api, host := startAPIRecorder(t, e)
	s := newTestSwarm(t, SwarmOptions{Host: host, Network: nw, Registerer: prometheus.NewRegistry(), Resync: time.Hour})
	rec := newRecorder()
	startRun(t, s, rec)
	rec.waitFor(t, 0, 10*time.Second, "the first listing", func(route.Config) bool { return true })

	api.mu.Lock()
	api.fail404 = true
	api.mu.Unlock()
	name := e.service("app", nw, 1, "swarmgate.hosts=gone.sgtest.example", "swarmgate.port=8080")
	rec.waitFor(t, 0, 60*time.Second, "1 endpoint", endpointCount(name, 1))
	api.mu.Lock()
	failed := !api.fail404
	api.mu.Unlock()
	if !failed {
		t.Fatal("no filtered task listing happened")
	}
	if n := metricValue(s.m.syncErrors); n != 0 {
		t.Errorf("%v sync errors, want 0: a removed service is not an outage", n)
	}
	if n := metricValue(s.m.requests.WithLabelValues("tasks", "error")); n != 0 {
		t.Errorf("%v task listing errors counted", n)
	}
}

// TestSwarmStampsChanges checks Config.Changed: the time Swarm reported
// the event for an event-driven change, the task's status timestamp for a
// change a poll found; never in the future.
func TestSwarmStampsChanges(t *testing.T) {
	e := needSwarm(t)
	testImage(t)
	nw := e.network("stamp")
	s := newTestSwarm(t, SwarmOptions{Host: e.host, Network: nw, Resync: time.Hour})
	rec := newRecorder()
	startRun(t, s, rec)
	rec.waitFor(t, 0, 10*time.Second, "the first listing", func(route.Config) bool { return true })

	before := time.Now()
	name := e.service("app", nw, 1, "swarmgate.hosts=stamp.sgtest.example", "swarmgate.port=8080")
	c, i, at := rec.waitFor(t, 0, 10*time.Second, "the new route", func(c route.Config) bool { return routeOf(c, name) != nil })
	// The engine's clock is this machine's: allow for rounding only.
	if c.Changed.Before(before.Add(-time.Second)) || c.Changed.After(at) {
		t.Errorf("event-driven change stamped %v; created after %v, received %v", c.Changed, before, at)
	}
	c, _, at = rec.waitFor(t, i, 60*time.Second, "1 endpoint", endpointCount(name, 1))
	ran := lastRunning(e.runningTasks(name))
	// The task's running timestamp, or the earliest change the same Config
	// brings with it (an event the same listing answered): never the time
	// of the poll, never in the future.
	if c.Changed.After(ran.Add(time.Millisecond)) || c.Changed.Before(before.Add(-time.Second)) || c.Changed.After(at) {
		t.Errorf("poll-found change stamped %v, want the task's running timestamp %v or an earlier change (created after %v, received %v)", c.Changed, ran, before, at)
	}
	t.Logf("task running -> Config: %v by the stamp", at.Sub(c.Changed).Round(time.Millisecond))
}
