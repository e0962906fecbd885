package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// blockSource delivers nothing until ctx is done: a Swarm not reached yet.
type blockSource struct{}

func (blockSource) Name() string { return "block" }
func (blockSource) Run(ctx context.Context, _ func(route.Config)) error {
	<-ctx.Done()
	return nil
}

// TestRunWithTheFileSource runs the control plane on discovery's routes
// file source: the admin API says when it is ready, and a bad label travels
// to the edge as a label error that leaves the other routes alone: the
// deltas that break and fix it carry nothing else.
func TestRunWithTheFileSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "routes.yaml")
	write := func(port string) {
		t.Helper()
		data := fmt.Sprintf(`services:
  - name: web
    labels: {swarmgate.hosts: web.example.org, swarmgate.port: "8080"}
    endpoints: ["10.0.0.1", "10.0.0.2"]
  - name: api
    labels: {swarmgate.hosts: api.example.org, swarmgate.port: %q}
    endpoints: ["10.0.0.3"]
`, port)
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("9000")
	listen, admin := testkit.UnusedAddr(t), testkit.UnusedAddr(t)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Source:   discovery.NewFile(discovery.FileOptions{Path: file, Interval: 10 * time.Millisecond}),
			Listen:   listen,
			Admin:    admin,
			Server:   ServerOptions{Heartbeat: time.Hour},
			Registry: reg,
			Logger:   zaptest.NewLogger(t),
		})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(stop)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		if code, body := get("/readyz"); code != 200 {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})

	got := newConfigs()
	c := startClient(t, ClientOptions{Addrs: []string{"tcp://" + listen}}, got)
	good, err := discovery.ParseRoutesFile([]byte(must(os.ReadFile(file))))
	if err != nil {
		t.Fatal(err)
	}
	got.waitFor(t, good, "both routes")

	write("ninety")
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		cfg, _ := got.last()
		if len(cfg.Errors) != 1 {
			return fmt.Errorf("%d label errors", len(cfg.Errors))
		}
		return nil
	})
	cfg, _ := got.last()
	le := cfg.Errors[0]
	if le.Service != "api" || le.Label != "swarmgate.port" || le.Value != "ninety" || le.Reason == "" {
		t.Errorf("label error at the edge: %+v", le)
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].Service != "web" || !slices.Equal(cfg.Routes[0].Endpoints, []string{"10.0.0.1:8080", "10.0.0.2:8080"}) {
		t.Errorf("routes beside the bad label: %+v", cfg.Routes)
	}
	write("9000")
	got.waitFor(t, good, "fixed")
	_, _, frames := c.tap.session(t, 0)
	frames = nonPing(frames)
	for i, want := range [][]string{{"e:api", "r:api", "x:api"}, {"e:api", "r:api", "x:api"}} {
		if f := frames[1+i]; !slices.Equal(slices.Sorted(slices.Values(f.keys())), want) {
			t.Errorf("delta %d: keys %v, want %v: the good route must not travel again", i+1, f.keys(), want)
		}
	}

	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "swarmgate_control_edges 1") {
		t.Errorf("/metrics: %d, no swarmgate_control_edges 1", code)
	}
	code, body := get("/api/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Routes != 2 || len(st.Edges) != 1 || st.Edges[0].Version != st.Version {
		t.Errorf("/api/status: %d %v %s", code, err, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}

	// Shutdown ends the stream; the edge keeps its Config and retries.
	stop()
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		if s := c.State(); s.Connected || !s.Synced {
			return fmt.Errorf("after shutdown: %+v", s)
		}
		return nil
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRunNotReadyAndErrors(t *testing.T) {
	if err := Run(context.Background(), Options{Listen: testkit.UnusedAddr(t), Registry: prometheus.NewRegistry()}); err == nil || !strings.Contains(err.Error(), "no route source") {
		t.Errorf("no source: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = Run(context.Background(), Options{Source: blockSource{}, Listen: taken.Addr().String(), Registry: prometheus.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Errorf("listen address in use: %v", err)
	}

	// No Config yet: /readyz fails and edges are turned away.
	listen, admin := testkit.UnusedAddr(t), testkit.UnusedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Source: blockSource{}, Listen: listen, Admin: admin, Registry: prometheus.NewRegistry(), Logger: zaptest.NewLogger(t)})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz: %d, want 503", resp.StatusCode)
		}
		return nil
	})
	resp, err := http.Get("http://" + listen + StreamPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("stream before the first Config: %d", resp.StatusCode)
	}
}
