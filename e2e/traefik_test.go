package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestTraefikLabels: with the control plane reading Traefik's dialect
// (SWARMGATE_LABELS=swarmgate,interlock,traefik, the stack's variable for
// --labels), a service carrying only Traefik labels, as a Traefik stack
// writes them, is routed: its router's rule (two hosts, a path prefix), its
// service's port, its stripprefix and headers middlewares. A service whose
// rule swarmgate cannot represent is skipped, and the label and the reason
// are in the edge's admin API and the control plane's log.
func TestTraefikLabels(t *testing.T) {
	updateControl(t, "--env-add", "SWARMGATE_LABELS=swarmgate,interlock,traefik")
	t.Cleanup(func() { updateControl(t, "--env-add", "SWARMGATE_LABELS=swarmgate,interlock") })

	host, alias := prefix+"-traefik.e2e.test", prefix+"-traefik-alias.e2e.test"
	labelled := time.Now()
	svc := createEcho(t, "traefik", 2, map[string]string{
		"traefik.enable":                                                                "true",
		"traefik.swarm.network":                                                         network,
		"traefik.http.routers.shop.rule":                                                fmt.Sprintf("(Host(`%s`) || Host(`%s`)) && PathPrefix(`/shop`)", host, alias),
		"traefik.http.routers.shop.entrypoints":                                         "web",
		"traefik.http.routers.shop.middlewares":                                         "shop-strip,shop-headers@swarm",
		"traefik.http.middlewares.shop-strip.stripprefix.prefixes":                      "/shop",
		"traefik.http.middlewares.shop-headers.headers.customresponseheaders.X-Dialect": "traefik",
		"traefik.http.services.shop.loadbalancer.server.port":                           "8000",
	})
	if err := testkit.Wait(30*time.Second, 20*time.Millisecond, func() error {
		code, _, err := get(host, "/shop/cart")
		if err != nil || code != 200 {
			return fmt.Errorf("%s/shop/cart did not answer 200: %d %v", host, code, err)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\nthe edge's routes: %s", err, adminText(t, "/api/routes"))
	}
	took := time.Since(labelled)
	t.Logf("Traefik-labelled service routed %v after docker service create", took.Round(time.Millisecond))
	waitTasksRunning(t, svc.name, 2, 30*time.Second)
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		var view struct {
			Routes []struct {
				Route     string
				Endpoints []struct{ Addr string }
			}
		}
		adminJSON(t, "/api/routes", &view)
		for _, r := range view.Routes {
			if r.Route == svc.name+"/shop" && len(r.Endpoints) == 2 {
				return nil
			}
		}
		return fmt.Errorf("route %s/shop does not have both tasks: %+v", svc.name, view.Routes)
	})

	for i := range 20 {
		h := host
		if i%2 == 1 {
			h = alias
		}
		resp, a := getWithHeaders(t, h, "/shop/cart")
		if resp.StatusCode != 200 || a.Service != svc.name {
			t.Fatalf("%s/shop/cart: %d from %q, want 200 from %s", h, resp.StatusCode, a.Service, svc.name)
		}
		if a.Path != "/cart" {
			t.Errorf("%s: the task saw path %q, want /cart (stripprefix /shop)", h, a.Path)
		}
		if got := resp.Header.Get("X-Dialect"); got != "traefik" {
			t.Errorf("%s: X-Dialect = %q, want traefik (headers middleware)", h, got)
		}
	}
	// The rule's path prefix: the service owns /shop on its hosts, nothing else.
	if code, _, err := get(host, "/other"); err != nil || code != 404 {
		t.Errorf("%s/other: %d %v, want 404", host, code, err)
	}

	// A rule that matches on the method cannot be represented: skipped,
	// with the label and why, never half-routed.
	bad := prefix + "-traefik-bad.e2e.test"
	badRule := fmt.Sprintf("Host(`%s`) && Method(`POST`)", bad)
	createEcho(t, "traefik-bad", 1, map[string]string{
		"traefik.enable":                                     "true",
		"traefik.http.routers.bad.rule":                      badRule,
		"traefik.http.services.bad.loadbalancer.server.port": "8000",
	})
	var view struct {
		Errors []struct{ Service, Label, Value, Reason string } `json:"label_errors"`
	}
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		adminJSON(t, "/api/routes", &view)
		if slices.ContainsFunc(view.Errors, func(e struct{ Service, Label, Value, Reason string }) bool {
			return e.Service == prefix+"-traefik-bad" && e.Label == "traefik.http.routers.bad.rule" && e.Value == badRule &&
				strings.Contains(e.Reason, "Method(`POST`) is not representable")
		}) {
			return nil
		}
		return fmt.Errorf("no label error for the Method rule in /api/routes: %+v", view.Errors)
	})
	if code, _, err := get(bad, "/"); err != nil || code != 404 {
		t.Errorf("%s: %d %v, want 404 (the service is skipped)", bad, code, err)
	}
	testkit.Eventually(t, 30*time.Second, 500*time.Millisecond, func() error {
		logs := controlLogs(t, labelled.Add(-time.Second))
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "service skipped: invalid label") && strings.Contains(l, "traefik.http.routers.bad.rule") &&
				strings.Contains(l, "is not representable") {
				return nil
			}
		}
		if n := len(logs); n > 2000 {
			logs = logs[n-2000:]
		}
		return fmt.Errorf("the control plane's log names no traefik.http.routers.bad.rule error: ...%s", logs)
	})
}

// controlLogs returns what the control plane's running containers logged
// since, standard error included (docker logs of each container: the
// harness notes that `docker service logs` can hang after tasks change).
func controlLogs(t *testing.T, since time.Time) string {
	t.Helper()
	ids, err := docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+controlService)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, id := range strings.Fields(ids) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, "docker", "logs", "--since", since.Format(time.RFC3339Nano), id).CombinedOutput()
		cancel()
		if err != nil {
			t.Logf("docker logs %s: %v", id, err)
		}
		all.Write(out)
	}
	return all.String()
}

// getWithHeaders sends one request through the edge and returns the
// response (its body read) and the echo answer.
func getWithHeaders(t *testing.T, host, path string) (*http.Response, answer) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+edgeHTTP+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s%s: %v", host, path, err)
	}
	var a answer
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("%s%s: not an echo answer: %q", host, path, body)
		}
	}
	return resp, a
}

// updateControl updates the control plane service and waits until every
// replica is a new task and the edge is ready again (it reconnects to one).
func updateControl(t *testing.T, args ...string) {
	t.Helper()
	start := time.Now()
	tasks := func() []string {
		out, _ := docker("service", "ps", controlService, "--filter", "desired-state=running", "-q")
		return strings.Fields(out)
	}
	old := tasks()
	mustDocker(t, append(append([]string{"service", "update", "--detach"}, args...), controlService)...)
	err := testkit.Wait(120*time.Second, 250*time.Millisecond, func() error {
		now := tasks()
		if len(now) != controlReplicas || slices.ContainsFunc(now, func(id string) bool { return slices.Contains(old, id) }) {
			return fmt.Errorf("control update %v: tasks %v, old %v", args, now, old)
		}
		return nil
	})
	if err != nil {
		ps, _ := docker("service", "ps", "--no-trunc", controlService)
		t.Fatalf("%v\n%s", err, ps)
	}
	waitTasksRunning(t, controlService, controlReplicas, 60*time.Second)
	if err := waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("control plane replaced and edge ready %s after %s", time.Since(start).Round(time.Millisecond), args)
}
