package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/fleet"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

// replica is a control plane replica run in the test, watching a routes
// file as a manager's replica watches the Swarm.
type replica struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, routes, addr string) *replica {
	return startStateReplica(t, routes, addr, nil)
}

// startStateReplica is startReplica serving the fleet state too (if state
// is not nil).
func startStateReplica(t *testing.T, routes, addr string, state fleet.Store) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{addr: addr, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- control.Run(ctx, control.Options{
			Source:       discovery.NewFile(discovery.FileOptions{Path: routes, Interval: 10 * time.Millisecond}),
			Listen:       addr,
			State:        state,
			Registry:     prometheus.NewRegistry(),
			Logger:       zaptest.NewLogger(t).Named("control"),
			DrainTimeout: 2 * time.Second,
		})
	}()
	t.Cleanup(r.stop)
	return r
}

// stop ends the replica and waits for it; it is idempotent.
func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// writeRoutes writes a routes file with one service per host, all served by
// backend.
func writeRoutes(t *testing.T, path, backend string, hosts ...string) {
	t.Helper()
	writeRoutesWith(t, path, backend, "", hosts...)
}

// writeRoutesWith is writeRoutes with one more label line ("key: value")
// on every service, if not "".
func writeRoutesWith(t *testing.T, path, backend, label string, hosts ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("services:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "  - name: %s\n    labels:\n      swarmgate.hosts: %s\n      swarmgate.port: \"80\"\n", strings.Split(h, ".")[0], h)
		if label != "" {
			fmt.Fprintf(&b, "      %s\n", label)
		}
		fmt.Fprintf(&b, "    endpoints: [%q]\n", backend)
	}
	// Write and rename: a watcher never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// edgeUnderTest runs `swarmgate edge --control` as main would.
type edgeUnderTest struct {
	o      edgeOptions
	client *http.Client
}

func startControlledEdge(t *testing.T, control string) *edgeUnderTest {
	t.Helper()
	return startEdge(t, edgeOptions{
		httpAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t), control: control,
		drainTimeout: 2 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
	}).edgeUnderTest
}

// runningEdge is an edge run by startEdge, until stop or the test's end.
type runningEdge struct {
	*edgeUnderTest
	stop   func()
	output func() string // its logs, for an edge in a process of its own
}

// startEdge runs `swarmgate edge` with o as main would.
func startEdge(t *testing.T, o edgeOptions) *runningEdge {
	t.Helper()
	e := &edgeUnderTest{o: o, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEdge(ctx, e.o, zaptest.NewLogger(t)) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := testkit.Receive(t, done, 30*time.Second, "the edge to stop"); err != nil {
			t.Errorf("edge: %v", err)
		}
		e.client.CloseIdleConnections()
	}
	t.Cleanup(stop)
	return &runningEdge{edgeUnderTest: e, stop: stop}
}

func (e *edgeUnderTest) get(addr, host, path string) (int, string) {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (e *edgeUnderTest) waitRoute(t *testing.T, host string) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		if code, body := e.get(e.o.httpAddr, host, "/"); code != 200 {
			return fmt.Errorf("%s through the edge: %d %s", host, code, body)
		}
		return nil
	})
}

// TestEdgeFromControlPlaneSurvivesItsRestart: an edge started with
// --control serves the control plane's routes; while the control plane is
// down it goes on serving the last table (/readyz 200, marked stale), and
// when it comes back the edge catches up on what changed meanwhile.
func TestEdgeFromControlPlaneSurvivesItsRestart(t *testing.T) {
	backend := testkit.Addr(testkit.Backend(t, "web"))
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeRoutes(t, routes, backend, "app.example.org")
	cp := startReplica(t, routes, testkit.UnusedAddr(t))
	e := startControlledEdge(t, "tcp://"+cp.addr)
	e.waitRoute(t, "app.example.org")
	if code, body := e.get(e.o.adminAddr, "", "/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz with the control plane up: %d %q", code, body)
	}
	if code, body := e.get(e.o.adminAddr, "", "/api/sources"); code != 200 || !strings.Contains(body, `"connected": true`) {
		t.Fatalf("/api/sources: %d %s", code, body)
	}

	cp.stop()
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if code, body := e.get(e.o.adminAddr, "", "/readyz"); code != 200 || !strings.Contains(body, "stale") {
			return fmt.Errorf("/readyz with the control plane down: %d %q", code, body)
		}
		return nil
	})
	writeRoutes(t, routes, backend, "app.example.org", "new.example.org")
	for i := range 20 {
		if code, body := e.get(e.o.httpAddr, "app.example.org", "/"); code != 200 {
			t.Fatalf("request %d with the control plane down: %d %s", i, code, body)
		}
	}
	if code, _ := e.get(e.o.httpAddr, "new.example.org", "/"); code != 404 {
		t.Fatalf("a route appeared with the control plane down: %d", code)
	}

	startReplica(t, routes, cp.addr)
	e.waitRoute(t, "new.example.org")
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if code, body := e.get(e.o.adminAddr, "", "/readyz"); code != 200 || body != "ready\n" {
			return fmt.Errorf("/readyz after the restart: %d %q", code, body)
		}
		return nil
	})
}

// TestEdgeFailsOverBetweenReplicas: with two replicas, stopping the one an
// edge streams from costs no request, and changes keep arriving through the
// other.
func TestEdgeFailsOverBetweenReplicas(t *testing.T) {
	backend := testkit.Addr(testkit.Backend(t, "web"))
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeRoutes(t, routes, backend, "app.example.org")
	a := startReplica(t, routes, testkit.UnusedAddr(t))
	b := startReplica(t, routes, testkit.UnusedAddr(t))
	e := startControlledEdge(t, "tcp://"+a.addr+", tcp://"+b.addr)
	e.waitRoute(t, "app.example.org")

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	loop := make(chan struct{})
	go func() {
		defer close(loop)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			sent.Add(1)
			if code, _ := e.get(e.o.httpAddr, "app.example.org", "/"); code != 200 {
				failed.Add(1)
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	a.stop() // the edge was on the first address
	writeRoutes(t, routes, backend, "app.example.org", "after.example.org")
	e.waitRoute(t, "after.example.org")
	close(stop)
	<-loop
	if sent.Load() == 0 || failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across the failover", failed.Load(), sent.Load())
	}
	t.Logf("%d requests across the failover, none failed", sent.Load())
}

func TestEdgeRejectsBadControlFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    edgeOptions
		want string
	}{
		{"empty list", edgeOptions{control: " , "}, "no address"},
		{"bad scheme", edgeOptions{control: "udp://cp:7070"}, "--control"},
		{"cert without key", edgeOptions{control: "tcp://cp:7070", controlTLS: peerTLS{cert: "c.pem"}}, "--control-tls"},
		{"missing CA file", edgeOptions{control: "tcp://cp:7070", controlTLS: peerTLS{ca: "/nonexistent-ca.pem"}}, "no such file"},
	} {
		o := tt.o
		o.httpAddr, o.adminAddr = testkit.UnusedAddr(t), testkit.UnusedAddr(t)
		if err := runEdge(context.Background(), o, zaptest.NewLogger(t)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}
