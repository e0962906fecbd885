package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestEdgeServesRoutesFileAndStopsCleanly runs the edge as main would, with
// a routes file, then cancels its context as SIGTERM does: in-flight work
// finishes and runEdge returns nil (exit 0).
func TestEdgeServesRoutesFileAndStopsCleanly(t *testing.T) {
	release := make(chan struct{})
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer b.Close()
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: web
    labels:
      swarmgate.hosts: app.example.org
      swarmgate.port: "80"
    endpoints: [%q]
`, testkit.Addr(b))), 0o644)
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t), routes: routes, routesPoll: 10 * time.Millisecond,
		drainTimeout: 5 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEdge(ctx, o, zaptest.NewLogger(t)) }()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(addr, host, path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitReady(t, o.adminAddr)
	if code, body := get(o.httpAddr, "app.example.org", "/x"); code != 200 || body != "hello /x" {
		t.Fatalf("through the edge: %d %q", code, body)
	}
	if code, body := get(o.adminAddr, "", "/api/routes"); code != 200 || !strings.Contains(body, `"route": "web"`) {
		t.Fatalf("/api/routes: %d %s", code, body)
	}
	if code, body := get(o.adminAddr, "", "/metrics"); code != 200 || !strings.Contains(body, "swarmgate_http_requests_total") {
		t.Fatalf("/metrics: %d", code)
	}

	slow := make(chan string, 1)
	go func() { _, body := get(o.httpAddr, "app.example.org", "/slow"); slow <- body }()
	time.Sleep(100 * time.Millisecond) // the slow request is in flight
	cancel()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if body := <-slow; body != "hello /slow" {
		t.Errorf("in-flight request during shutdown: %q", body)
	}
	if err := testkit.Receive(t, done, 10*time.Second, "stop of the edge"); err != nil {
		t.Fatalf("runEdge: %v, want nil (exit 0)", err)
	}
}

func TestEdgeNeedsASource(t *testing.T) {
	err := runEdge(context.Background(), edgeOptions{httpAddr: testkit.UnusedAddr(t)}, zaptest.NewLogger(t))
	if err == nil || !strings.Contains(err.Error(), "no route source") {
		t.Fatalf("err = %v", err)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("SWARMGATE_ROUTES", "/etc/routes.yaml")
	t.Setenv("SWARMGATE_DRAIN_TIMEOUT", "7s")
	var got edgeOptions
	cmd := newEdgeCmd(&logOptions{level: "info", format: "json"})
	cmd.RunE = nil
	cmd.Run = func(*cobra.Command, []string) {}
	if err := cmd.Flags().Parse([]string{"--http", ":9999"}); err != nil {
		t.Fatal(err)
	}
	if err := flagsFromEnv(cmd.Flags()); err != nil {
		t.Fatal(err)
	}
	got.routes, _ = cmd.Flags().GetString("routes")
	got.httpAddr, _ = cmd.Flags().GetString("http")
	got.drainTimeout, _ = cmd.Flags().GetDuration("drain-timeout")
	if got.routes != "/etc/routes.yaml" || got.httpAddr != ":9999" || got.drainTimeout != 7*time.Second {
		t.Errorf("flags from env: %+v (the command line must win over the environment)", got)
	}
	t.Setenv("SWARMGATE_DIAL_TIMEOUT", "soon")
	if err := flagsFromEnv(cmd.Flags()); err == nil || !strings.Contains(err.Error(), "SWARMGATE_DIAL_TIMEOUT") {
		t.Errorf("bad env value: err = %v", err)
	}
}
