package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/swarmgate/swarmgate/edge"
	"github.com/swarmgate/swarmgate/proxy"
)

// TestCheckExactPaths: check shows an exact route's path as "= /path",
// in the table and as "exact" in JSON, for swarmgate's label and for
// Traefik's Path(); a prefix route of the same path has neither.
func TestCheckExactPaths(t *testing.T) {
	stack := writeFile(t, "stack.yml", `
services:
  api:
    image: example/api
    deploy:
      labels:
        swarmgate.port: "9000"
        swarmgate.routes.probe.hosts: api.example.org
        swarmgate.routes.probe.path: /health
        swarmgate.routes.probe.path.exact: "true"
        swarmgate.routes.tree.hosts: api.example.org
        swarmgate.routes.tree.path: /health
  whoami:
    image: traefik/whoami
    deploy:
      labels:
        - traefik.enable=true
        - traefik.http.routers.ping.rule=Host(`+"`whoami.example.org`"+`) && Path(`+"`/ping`"+`)
        - traefik.http.services.whoami.loadbalancer.server.port=80
`)
	out, err := runCheck(t, "", "--labels", "swarmgate,traefik", stack)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{"api/probe   api.example.org     = /health", "api/tree    api.example.org     /health", "whoami/ping  whoami.example.org  = /ping"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	js, err := runCheck(t, "", "--labels", "swarmgate,traefik", "-o", "json", stack)
	if err != nil {
		t.Fatalf("check -o json: %v\n%s", err, js)
	}
	var rep struct {
		Routes []map[string]any `json:"routes"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"api/probe": true, "api/tree": false, "whoami/ping": true}
	if len(rep.Routes) != len(want) {
		t.Fatalf("%d routes, want %d:\n%s", len(rep.Routes), len(want), js)
	}
	for _, r := range rep.Routes {
		id, _ := r["route"].(string)
		exact, has := r["exact"]
		if want[id] != (exact == true) || !want[id] && has {
			t.Errorf("route %s: exact %v (present %v), want %v", id, exact, has, want[id])
		}
	}
}

// TestPrintRoutesExact: `swarmgate routes` shows an exact route's path as
// check does, "= /path", beside the prefix route of the same path.
func TestPrintRoutesExact(t *testing.T) {
	v := edge.TableView{Routes: []proxy.RouteView{
		{Route: "api/probe", Hosts: []string{"api.example.org"}, Path: "/health", Exact: true, Weight: 100, Balancer: "p2c"},
		{Route: "api/status", Hosts: []string{"api.example.org"}, Path: "/status", Exact: true, Strip: true, Weight: 100, Balancer: "p2c"},
		{Route: "api/tree", Hosts: []string{"api.example.org"}, Path: "/health", Weight: 100, Balancer: "p2c"},
	}}
	var out bytes.Buffer
	if err := printRoutes(&out, v); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			rows[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for route, path := range map[string]string{"api/probe": "api.example.org = /health off", "api/status": "api.example.org = /status (strip) off", "api/tree": "api.example.org /health off"} {
		if !strings.HasPrefix(rows[route], path) {
			t.Errorf("route %s: row %q, want it to start %q\n%s", route, rows[route], path, out.String())
		}
	}
}
