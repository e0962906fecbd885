package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// What the roles export, found by running them as the binary does (runEdge,
// runControl, runSocketProxy) on a registry that records every collector.
// docs/metrics.md, deploy/grafana/dashboard.json and alerts.yml are checked
// against it, so none of them can name a metric or label that is not there,
// and no metric can go undocumented.

// metricInfo is one exported metric family.
type metricInfo struct {
	Type   string   // counter, gauge, histogram, summary
	Labels []string // variable labels, sorted
}

// recorder registers on a registry and keeps every collector registered.
type recorder struct {
	reg *prometheus.Registry
	mu  sync.Mutex
	cs  []prometheus.Collector
}

func newRecorder() *recorder { return &recorder{reg: newRegistry()} }

func (r *recorder) Register(c prometheus.Collector) error {
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return r.reg.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

func (r *recorder) metrics() *roleMetrics { return &roleMetrics{Registry: r.reg, Registerer: r} }

// descRE reads a Desc's String form, which is how a descriptor tells its
// name and variable labels.
var descRE = regexp.MustCompile(`^Desc\{fqName: "((?:[^"\\]|\\.)*)", .*variableLabels: \{([^}]*)\}\}$`)

// families returns the families the recorded collectors describe. A
// vector's type comes from its Go type; any other collector's from what it
// collects, or else from what the registry gathers, or is "" while it has
// collected nothing.
func (r *recorder) families(t *testing.T) map[string]metricInfo {
	t.Helper()
	gathered := map[string]string{}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		gathered[mf.GetName()] = strings.ToLower(mf.GetType().String())
	}
	r.mu.Lock()
	cs := slices.Clone(r.cs)
	r.mu.Unlock()
	out := map[string]metricInfo{}
	for _, c := range cs {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read descriptor %s", d)
			}
			var labels []string
			if m[2] != "" {
				labels = strings.Split(m[2], ",")
			}
			sort.Strings(labels)
			typ := typeOf(c)
			if typ == "" {
				typ = gathered[m[1]]
			}
			out[m[1]] = metricInfo{Type: typ, Labels: labels}
		}
	}
	return out
}

func typeOf(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec, prometheus.Histogram:
		return "histogram"
	case *prometheus.SummaryVec, prometheus.Summary:
		return "summary"
	case prometheus.Gauge: // before Counter: a Gauge has Inc and Add too
		return "gauge"
	case prometheus.Counter:
		return "counter"
	}
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	typ := ""
	for m := range ch {
		var d dto.Metric
		if typ == "" && m.Write(&d) == nil {
			switch {
			case d.Counter != nil:
				typ = "counter"
			case d.Gauge != nil:
				typ = "gauge"
			case d.Histogram != nil:
				typ = "histogram"
			case d.Summary != nil:
				typ = "summary"
			}
		}
	}
	return typ
}

// roles are the processes that export metrics, as docs/metrics.md names them.
var roles = []string{"edge", "control", "socket-proxy"}

var (
	exportsOnce sync.Once
	exportsErr  error
	exports     map[string]map[string]metricInfo // role -> metric -> info
	runtimeSet  map[string]bool                  // go_* and process_* families of a registry
)

// exported runs each role until its metrics are registered and returns what
// each exports. The edge runs with every source (a routes file with one
// route, a control plane and a Docker API that do not answer), a
// certificate directory and ACME, so that every optional part registers.
func exported(t *testing.T) map[string]map[string]metricInfo {
	t.Helper()
	exportsOnce.Do(func() { exports, exportsErr = runRoles(t) })
	if exportsErr != nil {
		t.Fatal(exportsErr)
	}
	return exports
}

func runRoles(t *testing.T) (map[string]map[string]metricInfo, error) {
	out := map[string]map[string]metricInfo{}
	dir := t.TempDir()
	noDocker := "unix://" + filepath.Join(dir, "no-docker.sock")
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer backend.Close()
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: web
    labels:
      swarmgate.hosts: web.example.org
    endpoints: [%q]
`, testkit.Addr(backend))), 0o644); err != nil {
		return nil, err
	}
	certs := filepath.Join(dir, "certs")
	if err := os.Mkdir(certs, 0o755); err != nil {
		return nil, err
	}

	run := func(role string, start func(ctx context.Context, rec *recorder) error, ready func(map[string]metricInfo) bool) error {
		rec := newRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- start(ctx, rec) }()
		var fams map[string]metricInfo
		var seen []string // the names registered at the last poll
		var since time.Time
		err := testkit.Wait(20*time.Second, 20*time.Millisecond, func() error {
			select {
			case err := <-done:
				done <- err
				return fmt.Errorf("%s stopped: %v", role, err)
			default:
			}
			if fams = rec.families(t); !ready(fams) {
				return fmt.Errorf("%s: not every metric registered yet", role)
			}
			// Parts of a role register as they start, after the ones
			// ready names: read it once nothing new has come for a while.
			if names := slices.Sorted(maps.Keys(fams)); !slices.Equal(names, seen) {
				seen, since = names, time.Now()
			}
			if time.Since(since) < 500*time.Millisecond {
				return fmt.Errorf("%s: still registering metrics", role)
			}
			for name, info := range fams {
				if info.Type == "" {
					return fmt.Errorf("%s: %s has collected nothing yet: type unknown", role, name)
				}
			}
			return nil
		})
		cancel()
		<-done
		if err != nil {
			return err
		}
		out[role] = fams
		if runtimeSet == nil {
			runtimeSet = map[string]bool{}
			mfs, _ := rec.reg.Gather()
			for _, mf := range mfs {
				if strings.HasPrefix(mf.GetName(), "go_") || strings.HasPrefix(mf.GetName(), "process_") {
					runtimeSet[mf.GetName()] = true
				}
			}
		}
		return nil
	}
	has := func(names ...string) func(map[string]metricInfo) bool {
		return func(f map[string]metricInfo) bool {
			for _, n := range names {
				if _, ok := f[n]; !ok {
					return false
				}
			}
			return true
		}
	}
	log := zaptest.NewLogger(t)
	err := run("edge", func(ctx context.Context, rec *recorder) error {
		o := edgeOptions{
			httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t),
			routes: routes, routesPoll: time.Second,
			control: "tcp://" + testkit.UnusedAddr(t), docker: noDocker,
			drainTimeout: time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
			metrics: rec.metrics(),
		}
		o.certs, o.acme, o.acmeCache, o.acmeDirectory = certs, true, t.TempDir(), "http://"+testkit.UnusedAddr(t)+"/directory"
		return runEdge(ctx, o, log.Named("edge"))
	}, has("swarmgate_route_endpoints", "swarmgate_http_requests_total", "swarmgate_swarm_syncs_total", "swarmgate_control_client_connected"))
	if err != nil {
		return nil, err
	}
	err = run("control", func(ctx context.Context, rec *recorder) error {
		o := controlOptions{listen: testkit.UnusedAddr(t), docker: noDocker, history: 16, drainTimeout: time.Second,
			metrics: rec.metrics()}
		return runControl(ctx, o, log.Named("control"))
	}, has("swarmgate_control_edges", "swarmgate_swarm_syncs_total"))
	if err != nil {
		return nil, err
	}
	err = run("socket-proxy", func(ctx context.Context, rec *recorder) error {
		o := socketProxyOptions{listen: testkit.UnusedAddr(t), docker: noDocker, maxQuery: 4096, eventBuffer: 16,
			drainTimeout: time.Second, registry: rec.metrics()}
		return runSocketProxy(ctx, o, log.Named("socket-proxy"))
	}, has("swarmgate_socketproxy_requests_total"))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// exportedAnywhere is the union of what the roles export, with the roles
// that export each metric.
func exportedAnywhere(t *testing.T) (map[string]metricInfo, map[string][]string) {
	all := map[string]metricInfo{}
	by := map[string][]string{}
	for _, role := range roles {
		for name, info := range exported(t)[role] {
			all[name] = info
			by[name] = append(by[name], role)
		}
	}
	return all, by
}

// TestEdgeCountsTLSHandshakes: the edge as the binary runs it counts the
// handshakes of its HTTPS listener (the listener is wired through the
// counting one), by version.
func TestEdgeCountsTLSHandshakes(t *testing.T) {
	rec := newRecorder()
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	os.WriteFile(routes, []byte("services: []\n"), 0o644)
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t),
		routes: routes, routesPoll: time.Second, drainTimeout: time.Second, dialTimeout: time.Second,
		maxBody: 1 << 20, maxHeader: 16 << 10, metrics: rec.metrics(),
	}
	o.certs, o.selfSigned = t.TempDir(), true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEdge(ctx, o, zaptest.NewLogger(t)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runEdge: %v", err)
		}
	}()
	waitReady(t, o.adminAddr)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := tls.Dial("tcp", o.httpsAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: v, ServerName: "any.example.org"})
		if err != nil {
			t.Fatalf("TLS %x handshake: %v", v, err)
		}
		c.Write([]byte("GET / HTTP/1.1\r\nHost: any.example.org\r\n\r\n")) // the first request counts it
		c.Close()
	}
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		got := map[string]float64{}
		mfs, _ := rec.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "swarmgate_tls_handshakes_total" {
				for _, m := range mf.GetMetric() {
					got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
		if got["TLS 1.2"] != 1 || got["TLS 1.3"] != 1 {
			return fmt.Errorf("handshakes by version: %v, want one of TLS 1.2 and one of TLS 1.3", got)
		}
		return nil
	})
}
