package socketproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

const dockerSock = "/var/run/docker.sock"

// requireEngine fails the test in CI and skips it elsewhere when no Docker
// Engine answers on dockerSock.
func requireEngine(t *testing.T) {
	t.Helper()
	c := engineClient(t)
	resp, err := c.Get("http://docker/_ping")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		err = fmt.Errorf("GET /_ping: %s", resp.Status)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no Docker Engine at %s in CI: %v", dockerSock, err)
	}
	t.Skipf("no Docker Engine at %s (%v): skipped outside CI (CI=true makes this a failure)", dockerSock, err)
}

// engineClient talks to the Engine directly, for test setup only.
func engineClient(t *testing.T) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", dockerSock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// testNetworkName is a network name no other test uses.
func testNetworkName(what string) string {
	return fmt.Sprintf("swarmgate-socketproxy-%s-%d", what, time.Now().UnixNano())
}

// createNetwork creates the bridge network name on the Engine, removed when
// the test ends, and returns its ID. Tests assert on their own objects
// only: other packages' tests create and remove networks on the same
// Engine at the same time.
func createNetwork(t *testing.T, name string) (id string) {
	t.Helper()
	engine := engineClient(t)
	resp, err := engine.Post("http://docker/v1.41/networks/create", "application/json",
		strings.NewReader(fmt.Sprintf(`{"Name":%q,"Driver":"bridge","Labels":{"swarmgate.test":"socketproxy"}}`, name)))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating network %s: %s", name, resp.Status)
	}
	t.Cleanup(func() {
		req, _ := http.NewRequest("DELETE", "http://docker/v1.41/networks/"+created.ID, nil)
		if resp, err := engine.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	return created.ID
}

// TestEngineAllowList runs the allow and deny tables through the proxy
// against the real Engine, with a tap between the proxy and the socket: the
// allowed requests must arrive at the tap exactly in their normalised form,
// and the denied ones must not send it a single byte.
func TestEngineAllowList(t *testing.T) {
	requireEngine(t)
	tap := startTap(t, dockerSock)
	tp := startProxy(t, Options{Upstream: "tcp://" + tap.addr}, nil)
	netName := testNetworkName("allow")
	netID := createNetwork(t, netName)
	now := time.Now().Unix()
	const running = "filters=%7B%22desired-state%22%3A%5B%22running%22%5D%7D"
	const kinds = "filters=%7B%22type%22%3A%5B%22service%22%2C%22network%22%5D%7D"

	allowed := []struct {
		name        string
		raw         string
		status      int
		forwarded   string // the request the Engine must see
		headersOnly bool   // a stream that stays open
	}{
		{"ping", get("GET", "/_ping"), 200, "GET /_ping", false},
		{"HEAD ping", get("HEAD", "/v1.41/_ping"), 200, "HEAD /v1.41/_ping", false},
		{"version", get("GET", "/version"), 200, "GET /version", false},
		{"versioned version", get("GET", "/v1.41/version"), 200, "GET /v1.41/version", false},
		{"services", get("GET", "/v1.41/services"), 200, "GET /v1.41/services", false},
		{"trailing slash", get("GET", "/services/"), 200, "GET /services", false},
		{"double slash and dot", get("GET", "//v1.41/./services"), 200, "GET /v1.41/services", false},
		{"dot-dot inside the list", get("GET", "/v1.41/services/../tasks"), 200, "GET /v1.41/tasks", false},
		{"escaped unreserved", get("GET", "/%73ervices"), 200, "GET /services", false},
		{"missing service", get("GET", "/v1.41/services/swarmgate-no-such-service"), 404, "GET /v1.41/services/swarmgate-no-such-service", false},
		{"tasks with filters", get("GET", "/v1.41/tasks?"+running), 200, "GET /v1.41/tasks?" + running, false},
		{"networks", get("GET", "/v1.41/networks"), 200, "GET /v1.41/networks", false},
		{"network by ID", get("GET", "/v1.41/networks/"+netID), 200, "GET /v1.41/networks/" + netID, false},
		{"network by name", get("GET", "/networks/"+netName), 200, "GET /networks/" + netName, false},
		{"nodes", get("GET", "/v1.41/nodes"), 200, "GET /v1.41/nodes", false},
		{"Content-Length 0", get("GET", "/v1.41/nodes", "Content-Length: 0"), 200, "GET /v1.41/nodes", false},
		{"HTTP/1.0", "GET /version HTTP/1.0\r\n\r\n", 200, "GET /version", false},
		{"client headers dropped", get("GET", "/_ping", "X-Registry-Auth: e30=", "Authorization: Basic eDp5"), 200, "GET /_ping", false},
		{"bounded events", get("GET", fmt.Sprintf("/v1.41/events?since=%d&until=%d", now-5, now)), 200,
			fmt.Sprintf("GET /v1.41/events?since=%d&until=%d", now-5, now), false},
		{"shared events", get("GET", "/v1.41/events?"+kinds), 200, "GET /v1.41/events?" + kinds, true},
	}
	for _, c := range allowed {
		before := len(tap.requests())
		res := rawRequest(t, tp.addr, c.raw, c.headersOnly)
		if res.status != c.status {
			t.Errorf("%s: status %d, want %d (body %.200q)", c.name, res.status, c.status, res.body)
		}
		reqs := tap.requests()
		if len(reqs) != before+1 || reqs[before] != c.forwarded {
			t.Errorf("%s: the Engine saw %q, want [%q]", c.name, reqs[before:], c.forwarded)
		}
		if c.name == "client headers dropped" && res.header.Get("Api-Version") == "" {
			t.Errorf("%s: Engine headers were not passed through: %v", c.name, res.header)
		}
	}
	// The shared stream is closed once its only watcher has gone.
	waitFor(t, "the shared events stream to close", func() bool { return testkit.MetricValue(t, tp.m.subscribers) == 0 })

	cases := denyCases()
	if len(cases) < 60 {
		t.Fatalf("only %d deny cases", len(cases))
	}
	for _, c := range cases {
		bytesBefore, reqsBefore := tap.bytes.Load(), len(tap.requests())
		checkDenied(t, c, rawRequest(t, tp.addr, c.raw, false))
		if b, r := tap.bytes.Load()-bytesBefore, tap.requests()[reqsBefore:]; b != 0 || len(r) != 0 {
			t.Errorf("%s: the Engine received %d bytes, requests %q", c.name, b, r)
		}
	}
	t.Logf("%d allowed and %d denied requests checked against the Engine", len(allowed), len(cases))
}

// TestEngineEventsThroughProxy watches real Engine events through the proxy:
// two watchers share one upstream stream and both see an event the test
// causes (a network created on the Engine). The subscription filters on
// that network's name: other tests create and remove networks meanwhile.
func TestEngineEventsThroughProxy(t *testing.T) {
	requireEngine(t)
	tap := startTap(t, dockerSock)
	tp := startProxy(t, Options{Upstream: "tcp://" + tap.addr}, nil)
	client := newClient(t)
	name := testNetworkName("events")
	filter, _ := json.Marshal(map[string][]string{"type": {"network"}, "network": {name}})
	query := "filters=" + url.QueryEscape(string(filter))
	a := watch(t, client, tp.url+"/v1.41/events?"+query)
	defer a.close()
	b := watch(t, client, tp.url+"/v1.41/events?"+query)
	defer b.close()

	id := createNetwork(t, name)
	for i, w := range []*watcher{a, b} {
		// The Engine does not apply the network filter to every
		// swarm-scoped event (a network another test removes can pass it):
		// skip what is not ours, for a bounded number of events.
		var seen []string
		for {
			var ev struct {
				Type, Action string
				Actor        struct{ ID string }
			}
			line := w.next(t)
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == "network" && ev.Action == "create" && ev.Actor.ID == id {
				break
			}
			if seen = append(seen, line); len(seen) >= 50 {
				t.Fatalf("watcher %d: no network create of %s in %d events: %q", i, id, len(seen), seen)
			}
		}
	}
	var streams int
	for _, r := range tap.requests() {
		if strings.HasPrefix(r, "GET /v1.41/events") {
			streams++
		}
	}
	if streams != 1 {
		t.Errorf("upstream events subscriptions = %d, want 1", streams)
	}
}
