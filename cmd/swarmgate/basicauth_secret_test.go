package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

// Inline basic-auth users (htpasswd -nbB alice s3cret, htpasswd -nb bob
// hunter2), and a user with a plain-text password, which is a label error.
const (
	aliceHash = "$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW"
	bobHash   = "$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB."
	carolPass = "pl4in-text-pw"
)

// TestInlineUsersStayOutOfSight runs a control plane and an edge (with its
// access log) on a routes file whose route has inline users, so that the
// hashes travel the control plane's stream as in production: the route
// answers 401 with a challenge without or with wrong credentials and 200
// with right ones, and no hash (nor the plain-text password of a refused
// label) appears in any output an operator or an attacker can read: the
// control plane's and the edge's logs (access log included), /api/routes,
// /api/status, the status page, and check's table and JSON.
func TestInlineUsersStayOutOfSight(t *testing.T) {
	backend := testkit.Addr(testkit.Backend(t, "admin"))
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	file := fmt.Sprintf(`services:
  - name: admin
    labels:
      swarmgate.hosts: admin.example.org
      swarmgate.auth.users: alice:%s, bob:%s
      swarmgate.auth.basic.realm: Admin
    endpoints: [%q]
  - name: refused
    labels:
      swarmgate.hosts: refused.example.org
      swarmgate.auth.users: carol:%s
    endpoints: [%q]
`, aliceHash, bobHash, backend, carolPass, backend)
	if err := os.WriteFile(routes, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	logger := func(name string) *zap.Logger {
		return zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)).Named(name)
	}

	cpAddr := testkit.UnusedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cpDone := make(chan error, 1)
	go func() {
		cpDone <- control.Run(ctx, control.Options{
			Source: discovery.NewFile(discovery.FileOptions{Path: routes, Interval: 10 * time.Millisecond}),
			Listen: cpAddr, Registry: prometheus.NewRegistry(), Logger: logger("control"), DrainTimeout: time.Second,
		})
	}()
	t.Cleanup(func() { cancel(); <-cpDone })

	o := edgeOptions{httpAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t), control: "tcp://" + cpAddr,
		drainTimeout: time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10, accessLog: true}
	e := &edgeUnderTest{o: o, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}}
	edgeCtx, stopEdge := context.WithCancel(context.Background())
	edgeDone := make(chan error, 1)
	go func() { edgeDone <- runEdge(edgeCtx, o, logger("edge")) }()
	t.Cleanup(func() {
		stopEdge()
		testkit.Receive(t, edgeDone, 30*time.Second, "the edge to stop")
		e.client.CloseIdleConnections()
	})

	send := func(user, pass string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+o.httpAddr+"/", nil)
		req.Host = "admin.example.org"
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		resp, err := send("alice", "s3cret")
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("alice through the edge: %d", resp.StatusCode)
		}
		return err
	})
	try := func(user, pass string) *http.Response {
		resp, err := send(user, pass)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"alice", "hunter2", 401}, {"mallory", "s3cret", 401}, {"bob", "hunter2", 200}, {"alice", "s3cret", 200}} {
		resp := try(c.user, c.pass)
		if resp.StatusCode != c.want {
			t.Errorf("%q:%q: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
		if c.want == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="Admin", charset="UTF-8"` {
			t.Errorf("%q:%q: WWW-Authenticate %q", c.user, c.pass, resp.Header.Get("WWW-Authenticate"))
		}
	}

	outputs := map[string]string{}
	for _, path := range []string{"/api/routes", "/api/status", "/", "/status/body"} {
		code, body := e.get(o.adminAddr, "", path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		outputs[path] = body
	}
	if !strings.Contains(outputs["/api/status"], `"alice"`) || !strings.Contains(outputs["/api/status"], "refused") {
		t.Errorf("/api/status names neither the users nor the refused label:\n%s", outputs["/api/status"])
	}
	outputs["check"], _ = runCheck(t, "", routes)
	outputs["check -o json"], _ = runCheck(t, "", "-o", "json", routes)
	if !strings.Contains(outputs["check"], "auth.users(alice bob)") || !strings.Contains(outputs["check"], "(1 user, hash withheld)") {
		t.Errorf("check names neither the users nor the withheld label:\n%s", outputs["check"])
	}
	var log strings.Builder
	for _, entry := range logs.All() {
		fmt.Fprintf(&log, "%s %s %v\n", entry.LoggerName, entry.Message, entry.ContextMap())
	}
	outputs["logs"] = log.String()
	if !strings.Contains(outputs["logs"], "admin.example.org") {
		t.Errorf("no access log entry for the route:\n%s", outputs["logs"])
	}

	// Parts of each secret long enough to be it, and none of the hash's
	// framing ($2y$05$) that other text might hold.
	secrets := []string{aliceHash[7:20], aliceHash[40:], bobHash[6:14], bobHash[15:], carolPass, "s3cret", "hunter2"}
	for what, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q:\n%s", what, s, out)
			}
		}
	}
}
