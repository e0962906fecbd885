package discovery

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// These tests run against the Docker Engine in swarm mode at DOCKER_HOST
// (default unix:///var/run/docker.sock). They create overlay networks and
// services named sgtest-<random>-*, from an image built here FROM scratch, and
// remove them all. Without an engine they skip, except in CI, where they fail.

const testSocket = "unix:///var/run/docker.sock"

// swarmEnv is one test's handle on the engine.
type swarmEnv struct {
	t      *testing.T
	cli    *client.Client
	host   string
	prefix string
}

func needSwarm(t *testing.T) *swarmEnv {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: Docker Engine in swarm mode required: "+format, args...)
		}
		t.Skipf("no Docker Engine in swarm mode: "+format, args...)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		unavailable("docker CLI: %v", err)
	}
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = testSocket
	}
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		unavailable("%v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		unavailable("%v", err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		unavailable("node is not a swarm manager (state %q)", info.Swarm.LocalNodeState)
	}
	b := make([]byte, 4)
	rand.Read(b)
	return &swarmEnv{t: t, cli: cli, host: host, prefix: "sgtest-" + hex.EncodeToString(b) + "-"}
}

// docker runs the docker CLI and returns its trimmed output.
func (e *swarmEnv) docker(args ...string) string {
	e.t.Helper()
	out, err := dockerCLI(e.host, args...)
	if err != nil {
		e.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func dockerCLI(host string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// network creates an overlay network, removed when the test ends (after its
// services are gone: Swarm refuses while tasks are attached).
func (e *swarmEnv) network(name string) string {
	e.t.Helper()
	name = e.prefix + name
	e.docker("network", "create", "--driver", "overlay", name)
	e.t.Cleanup(func() {
		err := testkit.Wait(30*time.Second, 200*time.Millisecond, func() error {
			out, err := dockerCLI(e.host, "network", "rm", name)
			if err == nil || strings.Contains(out, "No such network") || strings.Contains(out, "not found") {
				return nil
			}
			return fmt.Errorf("network rm %s: %v: %s", name, err, out)
		})
		if err != nil {
			e.t.Error(err)
		}
	})
	return name
}

// service creates a service of the test image, removed when the test ends.
// It returns when `docker service create` does (before tasks run).
func (e *swarmEnv) service(name, network string, replicas int, labels ...string) string {
	e.t.Helper()
	name = e.prefix + name
	args := []string{"service", "create", "--detach", "--no-resolve-image", "--name", name,
		"--replicas", strconv.Itoa(replicas), "--stop-grace-period", "1s"}
	if network != "" {
		args = append(args, "--network", network)
	}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	e.docker(append(args, testImage(e.t))...)
	e.t.Cleanup(func() {
		if out, err := dockerCLI(e.host, "service", "rm", name); err != nil && !strings.Contains(out, "not found") {
			e.t.Errorf("service rm %s: %v: %s", name, err, out)
		}
	})
	return name
}

// own is the part of c about this test's objects: the routes and label
// errors of services named with its prefix. Other packages' tests run
// against the same cluster at the same time.
func (e *swarmEnv) own(c route.Config) route.Config {
	var o route.Config
	for _, r := range c.Routes {
		if strings.HasPrefix(r.Service, e.prefix) {
			o.Routes = append(o.Routes, r)
		}
	}
	for _, le := range c.Errors {
		if strings.HasPrefix(le.Service, e.prefix) {
			o.Errors = append(o.Errors, le)
		}
	}
	return o
}

// runningTasks returns the running tasks of a service that Swarm wants running.
func (e *swarmEnv) runningTasks(service string) []swarm.Task {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts, err := e.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		e.t.Fatalf("task list: %v", err)
	}
	return slices.DeleteFunc(ts, func(t swarm.Task) bool { return t.Status.State != swarm.TaskStateRunning })
}

// containerIPs returns the addresses on network of the service's running
// containers, read from the containers themselves (the node is the only one).
func (e *swarmEnv) containerIPs(service, network string) []string {
	e.t.Helper()
	out := e.docker("ps", "--filter", "label=com.docker.swarm.service.name="+service, "--format", "{{.ID}}")
	var ips []string
	for _, id := range strings.Fields(out) {
		ip := e.docker("inspect", "--format", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", id)
		ips = append(ips, ip)
	}
	return ips
}

// The test image: a static binary that serves HTTP on :8080 and exits at
// once on SIGTERM, in an image FROM scratch. Built once per package run.
var testImg struct {
	once sync.Once
	name string
	err  error
}

const testImageMain = `package main

import (
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	go http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := os.Hostname()
		w.Write([]byte(h))
	}))
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	<-c
}
`

func testImage(t *testing.T) string {
	t.Helper()
	testImg.once.Do(func() {
		dir, err := os.MkdirTemp("", "sgtest-image-")
		if err != nil {
			testImg.err = err
			return
		}
		defer os.RemoveAll(dir)
		files := map[string]string{
			"main.go":    testImageMain,
			"go.mod":     "module sgtestecho\n\ngo 1.22\n",
			"Dockerfile": "FROM scratch\nCOPY echo /echo\nENTRYPOINT [\"/echo\"]\n",
		}
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
				testImg.err = err
				return
			}
		}
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "echo", ".")
		build.Dir = dir
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false")
		if out, err := build.CombinedOutput(); err != nil {
			testImg.err = fmt.Errorf("go build: %v: %s", err, out)
			return
		}
		b := make([]byte, 4)
		rand.Read(b)
		name := "sgtest-echo:" + hex.EncodeToString(b)
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = testSocket
		}
		if out, err := dockerCLI(host, "build", "-q", "-t", name, dir); err != nil {
			testImg.err = fmt.Errorf("docker build: %v: %s", err, out)
			return
		}
		testImg.name = name
	})
	if testImg.err != nil {
		t.Fatalf("test image: %v", testImg.err)
	}
	return testImg.name
}

func removeTestImage() {
	if testImg.name == "" {
		return
	}
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = testSocket
	}
	// Containers of removed services may still be stopping: retry briefly.
	err := testkit.Wait(10*time.Second, 200*time.Millisecond, func() error {
		if out, err := dockerCLI(host, "rmi", "-f", testImg.name); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "could not remove test image", testImg.name+":", err)
	}
}

// recorder keeps every Config a source sent, with the time it arrived.
type recorder struct {
	mu      sync.Mutex
	configs []route.Config
	times   []time.Time
	notify  chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) update(c route.Config) {
	r.mu.Lock()
	r.configs = append(r.configs, c)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.configs)
}

// last is the latest Config (the zero Config before the first).
func (r *recorder) last() route.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.configs) == 0 {
		return route.Config{}
	}
	return r.configs[len(r.configs)-1]
}

// since returns the Configs from index from on.
func (r *recorder) since(from int) []route.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.configs[max(from, 0):])
}

// waitFor returns the first Config from index from on that satisfies ok,
// its index and arrival time.
func (r *recorder) waitFor(t *testing.T, from int, timeout time.Duration, what string, ok func(route.Config) bool) (route.Config, int, time.Time) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.configs); i++ {
			if ok(r.configs[i]) {
				c, at := r.configs[i], r.times[i]
				r.mu.Unlock()
				return c, i, at
			}
		}
		n := len(r.configs)
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline.C:
			r.mu.Lock()
			var last route.Config
			if len(r.configs) > 0 {
				last = r.configs[len(r.configs)-1]
			}
			r.mu.Unlock()
			t.Fatalf("no update with %s within %v (%d updates; last %+v)", what, timeout, n, last)
		}
	}
}

func routeOf(c route.Config, service string) *route.Route {
	for i := range c.Routes {
		if c.Routes[i].Service == service {
			return &c.Routes[i]
		}
	}
	return nil
}

func endpointCount(service string, n int) func(route.Config) bool {
	return func(c route.Config) bool {
		r := routeOf(c, service)
		return r != nil && len(r.Endpoints) == n
	}
}

// startRun runs the source until the test ends.
func startRun(t *testing.T, s *Swarm, rec *recorder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, rec.update) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func newTestSwarm(t *testing.T, o SwarmOptions) *Swarm {
	t.Helper()
	s, err := NewSwarm(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// lastRunning is when the latest of a service's running tasks became running,
// by Swarm's own record.
func lastRunning(tasks []swarm.Task) time.Time {
	var at time.Time
	for _, t := range tasks {
		if t.Status.Timestamp.After(at) {
			at = t.Status.Timestamp
		}
	}
	return at
}

func TestSwarmSnapshot(t *testing.T) {
	e := needSwarm(t)
	nw := e.network("snap")
	svc := e.service("web", nw, 2, "swarmgate.hosts=web.sgtest.example", "swarmgate.port=8080", "swarmgate.path=/api")
	bad := e.service("bad", nw, 0, "swarmgate.hosts=bad.sgtest.example", "swarmgate.port=eighty")
	vipSvc := e.service("vip", nw, 0, "swarmgate.hosts=vip.sgtest.example", "swarmgate.port=80", "swarmgate.backend=vip")
	s := newTestSwarm(t, SwarmOptions{Host: e.host, Network: nw})

	// Snapshot is a single listing: ask until both tasks run (bounded).
	var cfg route.Config
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		var err error
		cfg, err = s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r := routeOf(cfg, svc); r == nil || len(r.Endpoints) != 2 {
			return fmt.Errorf("tasks of %s not running: %+v", svc, r)
		}
		return nil
	})
	r := routeOf(cfg, svc)
	if r.Network != nw || r.Port != 8080 || r.Path != "/api" || !slices.Equal(r.Hosts, []string{"web.sgtest.example"}) || r.ServiceID == "" || r.CreatedAt.IsZero() {
		t.Errorf("route: %+v", r)
	}
	var want []string
	for _, ip := range e.containerIPs(svc, nw) {
		want = append(want, net.JoinHostPort(ip, "8080"))
	}
	slices.Sort(want)
	if !slices.Equal(r.Endpoints, want) {
		t.Errorf("endpoints %v, want the containers' addresses %v", r.Endpoints, want)
	}

	if v := routeOf(cfg, vipSvc); v == nil || len(v.Endpoints) != 1 || !strings.HasSuffix(v.Endpoints[0], ":80") || v.Backend != route.BackendVIP {
		t.Errorf("vip route (no tasks, VIP still answers): %+v", v)
	}
	if routeOf(cfg, bad) != nil {
		t.Errorf("route of a service with a bad label")
	}
	var found bool
	for _, le := range cfg.Errors {
		if le.Service == bad && le.Label == "swarmgate.port" && le.Value == "eighty" {
			found = true
		}
	}
	if !found {
		t.Errorf("no label error for %s: %v", bad, cfg.Errors)
	}
}

func TestSwarmRunFollowsTheCluster(t *testing.T) {
	e := needSwarm(t)
	testImage(t) // built before the clock starts
	nw := e.network("run")
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	s := newTestSwarm(t, SwarmOptions{
		Host: e.host, Network: nw, Logger: zap.New(core), Registerer: reg,
		Resync: time.Hour, // every change below must come from events or convergence polling
	})
	rec := newRecorder()
	startRun(t, s, rec)
	rec.waitFor(t, 0, 10*time.Second, "the first listing", func(route.Config) bool { return true })

	// Event: the route exists as soon as the service does, before any task runs.
	name := e.prefix + "app"
	from := rec.count()
	created := time.Now()
	e.service("app", nw, 1, "swarmgate.hosts=app.sgtest.example", "swarmgate.port=8080")
	returned := time.Now()
	_, i, at := rec.waitFor(t, from, 5*time.Second, "the new route", func(c route.Config) bool { return routeOf(c, name) != nil })
	t.Logf("service create: CLI took %v; route %v after it returned (event-driven)", returned.Sub(created).Round(time.Millisecond), at.Sub(returned).Round(time.Millisecond))
	if d := at.Sub(returned); d > time.Second {
		t.Errorf("event-to-update latency %v, want under 1s", d)
	}

	// Convergence polling: the task's address appears once it runs.
	_, i, at = rec.waitFor(t, i, 60*time.Second, "1 endpoint", endpointCount(name, 1))
	ran := lastRunning(e.runningTasks(name))
	t.Logf("first task: endpoint %v after Swarm marked it running", at.Sub(ran).Round(time.Millisecond))
	if d := at.Sub(ran); d > time.Second {
		t.Errorf("task running to endpoint: %v, want under 1s", d)
	}

	// Scale up: every new task enters rotation within a second of running.
	scaled := time.Now()
	e.docker("service", "scale", "--detach", name+"=3")
	_, i, at = rec.waitFor(t, i, 60*time.Second, "3 endpoints", endpointCount(name, 3))
	ran = lastRunning(e.runningTasks(name))
	t.Logf("scale 1->3: endpoints %v after the command, %v after the last task ran", at.Sub(scaled).Round(time.Millisecond), at.Sub(ran).Round(time.Millisecond))
	if d := at.Sub(ran); d > time.Second {
		t.Errorf("scale up: task running to endpoint %v, want under 1s", d)
	}

	// Scale down: tasks leave rotation when Swarm stops wanting them.
	scaled = time.Now()
	e.docker("service", "scale", "--detach", name+"=1")
	_, i, at = rec.waitFor(t, i, 10*time.Second, "1 endpoint", endpointCount(name, 1))
	t.Logf("scale 3->1: endpoints %v after the command", at.Sub(scaled).Round(time.Millisecond))
	if d := at.Sub(scaled); d > time.Second {
		t.Errorf("scale down to endpoints: %v, want under 1s", d)
	}

	// Unchanged cluster, new listing: no update. An unrelated network
	// event forces a full listing; wait for it through the metric. Other
	// packages' tests change the same cluster meanwhile and cause updates
	// of their own: what must not happen is an update that changes this
	// test's routes, or one that repeats the update before it.
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		if n := len(e.runningTasks(name)); n != 1 {
			return fmt.Errorf("service %s has %d running tasks, want to settle at 1", name, n)
		}
		return nil
	})
	waitOwnQuiet(t, e, rec)
	updates, fulls := rec.count(), metricValue(s.m.syncs.WithLabelValues("full"))
	e.network("unrelated")
	waitMetric(t, s.m.syncs.WithLabelValues("full"), fulls+1)
	checkNoNews(t, e, rec.since(updates-1))

	// A bad label: the service leaves the routes and enters the errors,
	// logged once however many listings follow.
	from = rec.count()
	e.docker("service", "update", "--detach", "--label-add", "swarmgate.weight=heavy", name)
	rec.waitFor(t, from, 5*time.Second, "the label error", func(c route.Config) bool {
		errs := e.own(c).Errors
		return routeOf(c, name) == nil && len(errs) == 1 && errs[0].Service == name && errs[0].Label == "swarmgate.weight"
	})
	fulls = metricValue(s.m.syncs.WithLabelValues("full"))
	e.network("unrelated2")
	waitMetric(t, s.m.syncs.WithLabelValues("full"), fulls+1)
	if n := logs.FilterMessage("service skipped: invalid label").FilterField(zap.String("service", name)).Len(); n != 1 {
		t.Errorf("label error logged %d times, want once", n)
	}
	waitSkippedGauge(t, s, rec) // counts this test's service among others' bad ones

	// Fixed, then removing the labels removes the route.
	from = rec.count()
	e.docker("service", "update", "--detach", "--label-rm", "swarmgate.weight", name)
	_, i, _ = rec.waitFor(t, from, 5*time.Second, "the route back", endpointCount(name, 1))
	changed := time.Now()
	e.docker("service", "update", "--detach", "--label-rm", "swarmgate.hosts", "--label-rm", "swarmgate.port", name)
	_, _, at = rec.waitFor(t, i, 5*time.Second, "the route gone", func(c route.Config) bool {
		return routeOf(c, name) == nil && len(e.own(c).Errors) == 0
	})
	t.Logf("labels removed: route gone %v after the command", at.Sub(changed).Round(time.Millisecond))
	if d := at.Sub(changed); d > time.Second {
		t.Errorf("label removal to update: %v, want under 1s", d)
	}
	waitSkippedGauge(t, s, rec) // this test's service no longer among them
	if n := metricValue(s.m.requests.WithLabelValues("tasks", "ok")); n < 2 {
		t.Errorf("task list requests: %v", n)
	}
}

// waitQuiet waits until the source stops polling fast (nothing converges)
// and a full listing has run since, so that no update is on its way.
func waitQuiet(t *testing.T, s *Swarm, rec *recorder) {
	t.Helper()
	polls := s.m.syncs.WithLabelValues("poll")
	last, same := metricValue(polls), -1 // the first check is at once, not a period later
	testkit.Eventually(t, 30*time.Second, DefaultSwarmFastPoll, func() error {
		if now := metricValue(polls); now == last {
			same++
		} else {
			last, same = now, 0
		}
		if same < 4 { // four fast-poll periods without a poll
			return errors.New("the source kept polling: something still converges")
		}
		return nil
	})
}

// waitOwnQuiet waits until the test's own routes and label errors have stayed
// the same for four fast-poll periods, so that no update about them is on
// its way. (The source's polling says nothing here: it also follows what
// other packages' tests are changing on the same cluster.)
func waitOwnQuiet(t *testing.T, e *swarmEnv, rec *recorder) {
	t.Helper()
	const quiet = 4 * DefaultSwarmFastPoll
	last, since := e.own(rec.last()), time.Now()
	testkit.Eventually(t, 30*time.Second, DefaultSwarmFastPoll, func() error {
		if now := e.own(rec.last()); !reflect.DeepEqual(now, last) {
			last, since = now, time.Now()
		}
		if time.Since(since) < quiet {
			return errors.New("this test's routes kept changing: something of it still converges")
		}
		return nil
	})
}

// checkNoNews checks the updates that followed configs[0] for a listing of
// a cluster in which this test changed nothing: none may change the test's
// own routes and errors, and none may repeat the update before it (sent
// with nothing changed anywhere).
func checkNoNews(t *testing.T, e *swarmEnv, configs []route.Config) {
	t.Helper()
	for k := 1; k < len(configs); k++ {
		prev, c := configs[k-1], configs[k]
		prev.Changed, c.Changed = time.Time{}, time.Time{}
		if reflect.DeepEqual(prev, c) {
			t.Errorf("update %d of %d repeats the one before: a listing of an unchanged cluster sent an update", k, len(configs)-1)
		}
		if got, want := e.own(configs[k]), e.own(configs[0]); !reflect.DeepEqual(got, want) {
			t.Errorf("update %d of %d changed this test's routes: %+v, was %+v", k, len(configs)-1, got, want)
		}
	}
}

// waitSkippedGauge waits until the skipped-services gauge counts the
// services with label errors in the last Config sent (which a listing sets
// just before it sends the Config): the cluster's, not only this test's.
func waitSkippedGauge(t *testing.T, s *Swarm, rec *recorder) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		services := map[string]bool{}
		for _, le := range rec.last().Errors {
			services[le.Service] = true
		}
		if g := metricValue(s.m.skipped); g != float64(len(services)) {
			return fmt.Errorf("skipped services gauge %v, want %d (%v)", g, len(services), services)
		}
		return nil
	})
}

// waitMetric waits until a counter reaches want.
func waitMetric(t *testing.T, c prometheus.Counter, want float64) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if v := metricValue(c); v < want {
			return fmt.Errorf("counter at %v, want %v", v, want)
		}
		return nil
	})
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// sockForwarder is a stand-in for the socket-proxy: a unix socket that
// forwards byte for byte to the engine's, and that the test can cut.
type sockForwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func startForwarder(t *testing.T, path, target string) *sockForwarder {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &sockForwarder{ln: ln, target: target, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	return f
}

func (f *sockForwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("unix", f.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns[c], f.conns[u] = true, true
		f.mu.Unlock()
		f.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer f.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			dst.Close()
			src.Close()
		}
		go pipe(u, c)
		go pipe(c, u)
	}
}

// stop closes the listener and every connection: the API is gone.
func (f *sockForwarder) stop() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = map[net.Conn]bool{}
	f.mu.Unlock()
	f.wg.Wait()
}

func TestSwarmRunSurvivesAnOutage(t *testing.T) {
	e := needSwarm(t)
	if !strings.HasPrefix(e.host, "unix://") {
		t.Skipf("the outage test forwards a unix socket; DOCKER_HOST is %s", e.host)
	}
	nw := e.network("outage")
	name := e.service("app", nw, 1, "swarmgate.hosts=outage.sgtest.example", "swarmgate.port=8080")

	sock := filepath.Join(t.TempDir(), "docker.sock")
	fwd := startForwarder(t, sock, strings.TrimPrefix(e.host, "unix://"))
	core, logs := observer.New(zap.InfoLevel)
	s := newTestSwarm(t, SwarmOptions{Host: "unix://" + sock, Network: nw, Logger: zap.New(core), Registerer: prometheus.NewRegistry()})
	rec := newRecorder()
	startRun(t, s, rec)
	_, i, _ := rec.waitFor(t, 0, 60*time.Second, "1 endpoint", endpointCount(name, 1))
	if st := s.Status(); !st.Connected || !st.Synced || s.State().LastSync.IsZero() || s.State().Routes == 0 {
		t.Errorf("status while in step: %+v", s.State())
	}

	// The API goes away; the cluster changes meanwhile.
	fwd.stop()
	before := rec.count()
	e.docker("service", "scale", "--detach", name+"=2")
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if n := len(e.runningTasks(name)); n != 2 {
			return fmt.Errorf("scale to 2 did not converge: %d running", n)
		}
		return nil
	})
	waitMetric(t, s.m.syncErrors, 1) // the source noticed and is retrying
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if st := s.State(); st.Connected || !st.Synced || st.LastError == "" {
			return fmt.Errorf("status during the outage: %+v", st)
		}
		return nil
	})
	if n := rec.count(); n != before {
		t.Fatalf("update sent while the API was unreachable (%d -> %d)", before, n)
	}

	// Back: the change made meanwhile arrives.
	back := time.Now()
	fwd = startForwarder(t, sock, strings.TrimPrefix(e.host, "unix://"))
	defer fwd.stop()
	_, _, at := rec.waitFor(t, i, 10*time.Second, "2 endpoints after the outage", endpointCount(name, 2))
	t.Logf("API back: update %v later (backoff capped at %v)", at.Sub(back).Round(time.Millisecond), swarmMaxBackoff)
	if st := s.State(); !st.Connected || !st.Synced || st.LastSync.Before(back) {
		t.Errorf("status after the outage: %+v", st)
	}
	if n := logs.FilterMessage("Docker API unreachable; keeping the last routing table and retrying").Len(); n != 1 {
		t.Errorf("outage logged %d times, want once", n)
	}
	if n := logs.FilterMessage("Docker API reachable again").Len(); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
}

// TestSwarmMutualTLS reaches the engine through a TLS front that requires a
// client certificate, as a socket-proxy with mutual TLS does.
func TestSwarmMutualTLS(t *testing.T) {
	e := needSwarm(t)
	if !strings.HasPrefix(e.host, "unix://") {
		t.Skipf("the TLS front forwards to a unix socket; DOCKER_HOST is %s", e.host)
	}
	nw := e.network("tls")
	name := e.service("app", nw, 0, "swarmgate.hosts=tls.sgtest.example", "swarmgate.port=8080")

	ca := testkit.NewCA(t, "sgtest CA")
	client := ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"sgtest edge"}, Client: true})
	sock := strings.TrimPrefix(e.host, "unix://")
	upstream := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	front := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport: upstream,
	})
	front.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused client below is expected
	front.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	front.StartTLS()
	t.Cleanup(func() { front.Close(); upstream.CloseIdleConnections() })
	servers := x509.NewCertPool()
	servers.AddCert(front.Certificate())
	host := "tcp://" + front.Listener.Addr().String()

	s := newTestSwarm(t, SwarmOptions{Host: host, Network: nw, TLS: &tls.Config{
		RootCAs:      servers,
		Certificates: []tls.Certificate{client.TLSCertificate()},
	}})
	cfg, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := routeOf(cfg, name); r == nil || r.Network != nw {
		t.Errorf("route through mutual TLS: %+v", r)
	}

	anon := newTestSwarm(t, SwarmOptions{Host: host, TLS: &tls.Config{RootCAs: servers}})
	if _, err := anon.Snapshot(context.Background()); err == nil {
		t.Error("a client without a certificate got through")
	}
}
