package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

func TestControlFlagDefaults(t *testing.T) {
	cmd := newControlCmd(&logOptions{level: "info", format: "json"})
	for flag, want := range map[string]string{
		"listen": ":7070", "admin": ":8080", "docker": "unix:///var/run/docker.sock",
		"history": fmt.Sprint(control.DefaultHistory), "docker-tls-cert": "", "tls-ca": "",
	} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Errorf("no --%s", flag)
			continue
		}
		if f.DefValue != want {
			t.Errorf("--%s defaults to %q, want %q", flag, f.DefValue, want)
		}
	}
}

func TestControlRejectsBadTLSFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    controlOptions
		want string
	}{
		{"cert without key", controlOptions{tlsCert: "c.pem"}, "--tls-cert and --tls-key"},
		{"client CA without a certificate", controlOptions{tlsCA: "ca.pem"}, "--tls-ca needs"},
		{"docker cert without key", controlOptions{dockerTLS: peerTLS{cert: "c.pem"}}, "--docker-tls-cert and --docker-tls-key"},
		{"missing certificate file", controlOptions{tlsCert: "/nonexistent.crt", tlsKey: "/nonexistent.key", docker: "unix:///nonexistent.sock"}, "no such file"},
	} {
		o := tt.o
		o.listen = testkit.UnusedAddr(t)
		if err := runControl(context.Background(), o, zaptest.NewLogger(t)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestControlServesTheSwarm runs `swarmgate control` as main would,
// against the local engine: it becomes ready once it holds the Swarm's
// configuration, streams it to an edge, and stops cleanly (exit 0).
func TestControlServesTheSwarm(t *testing.T) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "active" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: Docker Engine in swarm mode required: %v %s", err, out)
		}
		t.Skipf("no Docker Engine in swarm mode: %v %s", err, out)
	}
	o := controlOptions{listen: testkit.UnusedAddr(t), admin: testkit.UnusedAddr(t), docker: host, history: 16, drainTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runControl(ctx, o, zaptest.NewLogger(t)) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	get := func(path string) (int, string) {
		resp, err := hc.Get("http://" + o.admin + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	testkit.Eventually(t, 30*time.Second, 0, func() error {
		if code, body := get("/readyz"); code != 200 {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})

	c, err := control.NewClient(control.ClientOptions{Addrs: []string{"tcp://" + o.listen}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	cdone := make(chan error, 1)
	got := make(chan route.Config, 16)
	go func() {
		cdone <- c.Run(cctx, func(cfg route.Config) {
			select {
			case got <- cfg:
			default:
			}
		})
	}()
	testkit.Receive(t, got, 10*time.Second, "Config from the control plane")
	// The state is set once update has returned: wait for it.
	testkit.Eventually(t, 5*time.Second, 0, func() error {
		if s := c.State(); !s.Connected || s.Version == "" {
			return fmt.Errorf("edge state: %+v", s)
		}
		return nil
	})
	code, body := get("/metrics")
	for _, m := range []string{"swarmgate_control_edges 1", "swarmgate_swarm_syncs_total", "go_goroutines"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Errorf("/metrics: %d, no %s", code, m)
		}
	}

	cancel()
	stopped = true
	if err := testkit.Receive(t, done, 10*time.Second, "stop of the control plane"); err != nil {
		t.Fatalf("runControl: %v, want nil (exit 0)", err)
	}
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		if c.State().Connected {
			return fmt.Errorf("edge still connected after the shutdown")
		}
		return nil
	})
	if !c.State().Synced {
		t.Error("the edge dropped its Config when the control plane stopped")
	}
	ccancel()
	if err := <-cdone; err != nil {
		t.Errorf("Client.Run: %v", err)
	}
}
