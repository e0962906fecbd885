package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmgate/swarmgate/discovery"
)

// fakeEngine is the part of the Docker Engine API that a rollout uses:
// inspecting a service and updating its spec, versioned as the engine
// versions it (an update of an out-of-date version is refused).
type fakeEngine struct {
	mu       sync.Mutex
	services map[string]*swarm.Service // by name
	updates  []string                  // "name weight", in order
	srv      *httptest.Server
}

var apiPath = regexp.MustCompile(`^/v[0-9.]+(/.*)$`)

// newFakeEngine is an engine with services, by name, and their labels.
func newFakeEngine(t *testing.T, services map[string]map[string]string) *fakeEngine {
	e := &fakeEngine{services: map[string]*swarm.Service{}}
	for i, name := range slices.Sorted(maps.Keys(services)) {
		e.services[name] = &swarm.Service{ID: fmt.Sprintf("id%d", i), Meta: swarm.Meta{Version: swarm.Version{Index: 10}},
			Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name, Labels: services[name]}}}
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.47")
	if strings.HasSuffix(r.URL.Path, "/_ping") {
		return
	}
	m := apiPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.Error(w, `{"message":"no such API"}`, http.StatusNotFound)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(m[1], "/"), "/")
	find := func(ref string) *swarm.Service {
		for _, s := range e.services {
			if s.ID == ref || s.Spec.Name == ref {
				return s
			}
		}
		return nil
	}
	switch {
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "services":
		s := find(parts[1])
		if s == nil {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"message":"service %s not found"}`, parts[1])
			return
		}
		json.NewEncoder(w).Encode(s)
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "services" && parts[2] == "update":
		s := find(parts[1])
		var spec swarm.ServiceSpec
		if s == nil || json.NewDecoder(r.Body).Decode(&spec) != nil {
			http.Error(w, `{"message":"bad update"}`, http.StatusBadRequest)
			return
		}
		if v := r.URL.Query().Get("version"); v != strconv.FormatUint(s.Version.Index, 10) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"message":"update out of sequence: version %s, at %d"}`, v, s.Version.Index)
			return
		}
		s.Spec, s.Version.Index = spec, s.Version.Index+1
		e.updates = append(e.updates, fmt.Sprintf("%s %d", s.Spec.Name, labelsWeight(spec.Labels)))
		fmt.Fprint(w, `{"Warnings":null}`)
	default:
		http.Error(w, `{"message":"not faked"}`, http.StatusNotFound)
	}
}

// weight is the weight of a service's routes (labelsWeight).
func (e *fakeEngine) weight(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return labelsWeight(e.services[name].Spec.Labels)
}

// labelsWeight is the swarmgate.weight of labels, else the weight label of
// their first named route, else 100.
func labelsWeight(labels map[string]string) int {
	v, ok := labels[weightLabel]
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if !ok && strings.HasPrefix(k, "swarmgate.routes.") && strings.HasSuffix(k, ".weight") {
			v, ok = labels[k], true
		}
	}
	if !ok {
		return 100
	}
	n, _ := strconv.Atoi(v)
	return n
}

func (e *fakeEngine) labels(name string) map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.services[name].Spec.Labels)
}

// fakeEdge is an edge's /metrics with the proxy's two series that a rollout
// reads: requests by service and code, and the latency histogram (the
// proxy's buckets).
type fakeEdge struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	srv      *httptest.Server
}

func newFakeEdge(t *testing.T) *fakeEdge {
	reg := prometheus.NewRegistry()
	e := &fakeEdge{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "swarmgate_http_requests_total"}, []string{"route", "service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "swarmgate_http_request_duration_seconds",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"route", "service"}),
	}
	reg.MustRegister(e.requests, e.duration)
	e.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(e.srv.Close)
	return e
}

// serve counts n requests of service: one in failEvery answered 500 (none
// if 0), nine in ten in 8 ms and the others in 20 ms.
func (e *fakeEdge) serve(service string, n, failEvery int) {
	for i := range n {
		code := "200"
		if failEvery > 0 && i%failEvery == failEvery-1 {
			code = "500"
		}
		e.requests.WithLabelValues(service+"/web", service, code).Inc()
		d := 0.008
		if i%10 == 9 {
			d = 0.020
		}
		e.duration.WithLabelValues(service+"/web", service).Observe(d)
	}
}

// fakeTraffic is the clients: while the clock runs, each edge answers rps
// requests a second, split between the services by the weights the engine
// holds. A service in down has no task in rotation: the edges give its
// share to the others (as proxy's weighted groups do).
type fakeTraffic struct {
	engine    *fakeEngine
	edges     []*fakeEdge
	services  []string
	rps       int
	failEvery map[string]int
	down      map[string]bool
}

func (f *fakeTraffic) run(d time.Duration) {
	weights := map[string]int{}
	sum := 0
	for _, s := range f.services {
		if !f.down[s] {
			weights[s] = f.engine.weight(s)
			sum += weights[s]
		}
	}
	for _, e := range f.edges {
		n := int(float64(f.rps) * d.Seconds())
		for _, s := range f.services {
			if sum > 0 {
				e.serve(s, n*weights[s]/sum, f.failEvery[s])
			}
		}
	}
}

// fakeRolloutClock runs the traffic for each interval at once, and cancels
// the rollout at the Sleep numbered cancelAt (1-based) if set, as Ctrl-C.
type fakeRolloutClock struct {
	traffic  *fakeTraffic
	slept    []time.Duration
	cancelAt int
	cancel   context.CancelFunc
}

func (c *fakeRolloutClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	if len(c.slept) == c.cancelAt {
		c.cancel()
		return ctx.Err()
	}
	c.traffic.run(d)
	return nil
}

// rolloutWorld is a swarm of the services shop-blue (weight 100), and
// shop-green, shop-red and shop-gone (weight 0) on shop.example.org behind
// two edges at 50 requests a second each: shop-red answers 500 to one
// request in five, shop-gone has no task in rotation. shop-v1 and shop-v2
// carry only Traefik labels, one router each on shop.example.org; other is
// on other.example.org, and broken's labels are invalid. The Docker Engine
// is the operator's, found through DOCKER_HOST.
type rolloutWorld struct {
	engine  *fakeEngine
	edges   []*fakeEdge
	traffic *fakeTraffic
}

func shopLabels(weight string) map[string]string {
	return map[string]string{"swarmgate.hosts": "shop.example.org", "swarmgate.port": "8080", weightLabel: weight}
}

func traefikShop() map[string]string {
	return map[string]string{"traefik.enable": "true", "traefik.http.routers.shop.rule": "Host(`shop.example.org`)",
		"traefik.http.services.shop.loadbalancer.server.port": "8080"}
}

func newRolloutWorld(t *testing.T) *rolloutWorld {
	w := &rolloutWorld{engine: newFakeEngine(t, map[string]map[string]string{
		"shop-blue": shopLabels("100"), "shop-green": shopLabels("0"), "shop-red": shopLabels("0"), "shop-gone": shopLabels("0"),
		"shop-v1": traefikShop(), "shop-v2": traefikShop(),
		"other":  {"swarmgate.hosts": "other.example.org", "swarmgate.port": "8080"},
		"broken": {"swarmgate.hosts": "shop.example.org", "swarmgate.port": "http"},
	}), edges: []*fakeEdge{newFakeEdge(t), newFakeEdge(t)}}
	w.traffic = &fakeTraffic{engine: w.engine, edges: w.edges, rps: 50,
		failEvery: map[string]int{"shop-red": 5}, down: map[string]bool{"shop-gone": true}}
	t.Setenv("DOCKER_HOST", "tcp://"+w.engine.srv.Listener.Addr().String())
	for _, k := range []string{"DOCKER_API_VERSION", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"} {
		t.Setenv(k, "")
	}
	return w
}

// run runs `swarmgate rollout args...` with the world's clock, the edges'
// URLs for http://edge1:8080 and http://edge2:8080, and returns what a
// terminal shows and the exit status, as main would.
func (w *rolloutWorld) run(t *testing.T, clock *fakeRolloutClock, args ...string) (string, int) {
	t.Helper()
	clock.traffic = w.traffic
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock.cancel = cancel
	args = append([]string(nil), args...)
	for i, a := range args {
		a = strings.ReplaceAll(a, "http://edge1:8080", w.edges[0].srv.URL)
		args[i] = strings.ReplaceAll(a, "http://edge2:8080", w.edges[1].srv.URL)
	}
	// The clients' traffic goes to the two services of the rollout.
	w.traffic.services = nil
	for i, a := range args {
		if (a == "--from" || a == "--to") && i+1 < len(args) && w.engine.services[args[i+1]] != nil {
			w.traffic.services = append(w.traffic.services, args[i+1])
		}
	}
	cmd := rolloutCmd(clock)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(&out, "swarmgate:", err)
		return out.String(), 1
	}
	return out.String(), 0
}

const rolloutArgs = "--edges http://edge1:8080,http://edge2:8080 --interval 1m"

func TestRolloutPromotesThroughDocker(t *testing.T) {
	w := newRolloutWorld(t)
	clock := &fakeRolloutClock{}
	out, status := w.run(t, clock, append([]string{"--from", "shop-blue", "--to", "shop-green"}, strings.Fields(rolloutArgs)...)...)
	if status != 0 {
		t.Fatalf("exit %d:\n%s", status, out)
	}
	if w.engine.weight("shop-blue") != 0 || w.engine.weight("shop-green") != 100 {
		t.Fatalf("weights %d/%d, want 0/100:\n%s", w.engine.weight("shop-blue"), w.engine.weight("shop-green"), out)
	}
	// The weight that goes up is raised first: the two are never both 0.
	want := []string{"shop-green 1", "shop-blue 99", "shop-green 5", "shop-blue 95", "shop-green 25", "shop-blue 75",
		"shop-green 50", "shop-blue 50", "shop-green 100", "shop-blue 0"}
	if strings.Join(w.engine.updates, ",") != strings.Join(want, ",") {
		t.Errorf("updates %v, want %v", w.engine.updates, want)
	}
	if len(clock.slept) != 5 || clock.slept[0] != time.Minute {
		t.Errorf("slept %v, want 5 intervals of 1m", clock.slept)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "step 1/5: shop-blue 99, shop-green 1 | shop-blue: 5940 requests") ||
		!strings.HasPrefix(lines[5], "done: shop-green at weight 100, shop-blue at 0") {
		t.Errorf("output:\n%s", out)
	}
}

func TestRolloutRollsBackThroughDocker(t *testing.T) {
	w := newRolloutWorld(t)
	out, status := w.run(t, &fakeRolloutClock{}, append([]string{"--from", "shop-blue", "--to", "shop-red", "--json", "--steps", "5,50,100"},
		strings.Fields(rolloutArgs)...)...)
	if status != 1 || w.engine.weight("shop-blue") != 100 || w.engine.weight("shop-red") != 0 {
		t.Fatalf("exit %d, weights %d/%d, want 1 and 100/0:\n%s", status, w.engine.weight("shop-blue"), w.engine.weight("shop-red"), out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	var s stepLine
	var e endLine
	if err := json.Unmarshal([]byte(lines[0]), &s); err != nil || s.Step != 1 || s.OK || s.NewRequests != 300 || s.NewErrors != 60 ||
		s.OldRequests != 5700 || !strings.Contains(s.Reason, "error ratio 0.2000") {
		t.Errorf("step line %s: %+v %v", lines[0], s, err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Event != "rolled_back" || e.OldWeight != 100 || e.NewWeight != 0 {
		t.Errorf("end line %s: %+v %v", lines[1], e, err)
	}
	if !strings.HasPrefix(lines[2], "swarmgate: rolled back at step 1 (5%): NEW error ratio 0.2000 above 0.0100 (60 of 300 requests)") {
		t.Errorf("error line %q", lines[2])
	}
}

// A NEW with no task in rotation serves nothing: the edges give its share
// to OLD, nothing counts against it, and it is rolled back all the same.
func TestRolloutRollsBackAbsentNew(t *testing.T) {
	w := newRolloutWorld(t)
	out, status := w.run(t, &fakeRolloutClock{}, append([]string{"--from", "shop-blue", "--to", "shop-gone"}, strings.Fields(rolloutArgs)...)...)
	if status != 1 || w.engine.weight("shop-blue") != 100 || w.engine.weight("shop-gone") != 0 {
		t.Fatalf("exit %d, weights %d/%d, want 1 and 100/0:\n%s", status, w.engine.weight("shop-blue"), w.engine.weight("shop-gone"), out)
	}
	if !strings.Contains(out, "swarmgate: rolled back at step 1 (1%): NEW answered none of the step's 6000 requests, where its weight (1%) should have brought it about 60") {
		t.Errorf("output:\n%s", out)
	}
}

// Interrupted during step 3, the rollout leaves step 2's weights and says so.
func TestRolloutInterruptedThroughDocker(t *testing.T) {
	w := newRolloutWorld(t)
	out, status := w.run(t, &fakeRolloutClock{cancelAt: 3}, append([]string{"--from", "shop-blue", "--to", "shop-green"}, strings.Fields(rolloutArgs)...)...)
	if status != 1 || w.engine.weight("shop-blue") != 95 || w.engine.weight("shop-green") != 5 {
		t.Fatalf("exit %d, weights %d/%d, want 1 and 95/5:\n%s", status, w.engine.weight("shop-blue"), w.engine.weight("shop-green"), out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[2] != "interrupted: weights left where the last judged step put them: shop-blue 95, shop-green 5" ||
		lines[3] != "swarmgate: interrupted" {
		t.Errorf("output:\n%s", out)
	}
}

// Services a rollout cannot shift between are refused before any weight
// moves, with why.
func TestRolloutRefused(t *testing.T) {
	for _, tt := range []struct {
		name, from, to string
		args           []string
		want           string
	}{
		{"no such service", "shop-blue", "shop-nope", nil, "rollout: service shop-nope: "},
		{"no shared host and path", "shop-blue", "other", nil,
			"rollout: shop-blue and other share no host and path, so no weight splits traffic between them: shop-blue publishes shop.example.org /, other publishes other.example.org /"},
		{"invalid labels", "shop-blue", "broken", nil, "rollout: service broken is skipped by the edges, its labels are invalid: service \"broken\": label swarmgate.port=\"http\""},
		{"Traefik labels not read", "shop-v1", "shop-v2", nil,
			"shop-v1 publishes no HTTP route, shop-v2 publishes no HTTP route (shop-v2 has Traefik labels: read them with --labels swarmgate,interlock,traefik, as the edges do)"},
		{"swarmgate labels not read", "shop-v1", "shop-v2", []string{"--labels", "traefik"},
			"rollout: service shop-v1: setting swarmgate.routes.shop.weight=0 leaves route shop.example.org / at weight 100 (are swarmgate labels read? --labels traefik)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newRolloutWorld(t)
			args := append([]string{"--from", tt.from, "--to", tt.to}, tt.args...)
			out, status := w.run(t, &fakeRolloutClock{}, append(args, strings.Fields(rolloutArgs)...)...)
			if status != 1 || !strings.Contains(out, tt.want) || len(w.engine.updates) != 0 {
				t.Errorf("exit %d, updates %v:\n%s\nwant the error to contain %q", status, w.engine.updates, out, tt.want)
			}
		})
	}
}

// Two services with only Traefik labels: the weight labels set are those of
// their router's route, swarmgate.routes.shop.weight, and the edges read
// the weights from them.
func TestRolloutTraefikRouters(t *testing.T) {
	w := newRolloutWorld(t)
	out, status := w.run(t, &fakeRolloutClock{}, append([]string{"--from", "shop-v1", "--to", "shop-v2", "--steps", "50,100",
		"--labels", "swarmgate,interlock,traefik"}, strings.Fields(rolloutArgs)...)...)
	if status != 0 {
		t.Fatalf("exit %d:\n%s", status, out)
	}
	want := []string{"shop-v2 50", "shop-v1 50", "shop-v2 100", "shop-v1 0"}
	if strings.Join(w.engine.updates, ",") != strings.Join(want, ",") {
		t.Errorf("updates %v, want %v", w.engine.updates, want)
	}
	for name, weight := range map[string]int{"shop-v1": 0, "shop-v2": 100} {
		labels := w.engine.labels(name)
		if labels["swarmgate.routes.shop.weight"] != strconv.Itoa(weight) || labels[weightLabel] != "" {
			t.Errorf("%s labels %v", name, labels)
		}
		routes, errs := discovery.ParseLabelsFor(name, labels, discovery.DefaultDialects|discovery.DialectTraefik)
		if len(errs) != 0 || len(routes) != 1 || routes[0].Weight != weight {
			t.Errorf("%s: the edges read %+v, %v; want one route at weight %d", name, routes, errs, weight)
		}
	}
	if !strings.Contains(out, "step 1/2: shop-v1 50, shop-v2 50 | shop-v1: 3000 requests") {
		t.Errorf("output:\n%s", out)
	}
}

// TestRolloutDoc runs the console examples of docs/rollout.md in the world
// above: their output is what the doc shows.
func TestRolloutDoc(t *testing.T) {
	doc := filepath.Join("..", "..", "docs", "rollout.md")
	sessions := 0
	for _, b := range docBlocks(t, doc) {
		if b.lang != "console" {
			continue
		}
		sessions++
		t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) {
			w := newRolloutWorld(t)
			status := 0
			for _, s := range parseSession(b) {
				args := shellWords(s.cmd)
				var got string
				switch {
				case s.cmd == "echo $?":
					got = fmt.Sprintf("%d\n", status)
				case len(args) > 1 && args[0] == "swarmgate" && args[1] == "rollout":
					got, status = w.run(t, &fakeRolloutClock{}, args[2:]...)
				default:
					t.Fatalf("%s:%d: %q: the examples run swarmgate rollout and echo $?", doc, s.line, s.cmd)
				}
				if got != s.want {
					t.Errorf("%s:%d: $ %s\ngot:\n%s\nthe doc shows:\n%s", doc, s.line, s.cmd, got, s.want)
				}
			}
		})
	}
	if sessions == 0 {
		t.Fatalf("%s: no console examples", doc)
	}
}
