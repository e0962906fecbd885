package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/edge"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// TestPrintRoutes: the table shows each route's TLS mode, weight with its
// share of a weighted group, how many endpoints are up, and each
// endpoint's health, as docs/status.md's example does.
func TestPrintRoutes(t *testing.T) {
	until := time.Date(2026, 12, 3, 9, 47, 36, 0, time.UTC)
	v := edge.TableView{
		Routes: []proxy.RouteView{
			{Route: "web", Hosts: []string{"app.example.org"}, Path: "/", Weight: 90, Balancer: "p2c",
				Health: &proxy.HealthView{Path: "/healthz", Interval: "5s"},
				Endpoints: []proxy.EndpointView{{Addr: "10.0.1.5:8080", Available: true},
					{Addr: "10.0.1.6:8080", Down: true}}},
			{Route: "web-canary", Hosts: []string{"app.example.org"}, Path: "/", Weight: 10, Balancer: "p2c",
				Endpoints: []proxy.EndpointView{{Addr: "10.0.1.9:8080", Available: true, Failures: 2},
					{Addr: "10.0.1.10:8080", EjectedUntil: until, Ejections: 1}}},
			{Route: "shop", Hosts: []string{"shop.example.org"}, Path: "/", Weight: 100, Balancer: "round-robin",
				TLS: "shop", Endpoints: []proxy.EndpointView{{Addr: "10.0.1.7:8080", Available: true}}},
			{Route: "api/v1", Hosts: []string{"api.example.org"}, Path: "/v1", Strip: true, Weight: 100,
				Balancer: "p2c", TLS: route.TLSAuto},
		},
		L4: []edge.L4View{{Route: "db", Service: "db", SNI: []string{"db.example.org"},
			Endpoints: []proxy.EndpointView{{Addr: "10.0.1.8:5432", Available: true}}}},
		Errors: []edge.LabelErrorView{{Service: "broken", Label: "swarmgate.port", Value: "http", Reason: "not a port number"}},
	}
	var out bytes.Buffer
	if err := printRoutes(&out, v); err != nil {
		t.Fatal(err)
	}
	want := docRoutesOutput(t)
	if got := out.String(); got != want {
		t.Fatalf("got:\n%s\nwant (docs/status.md):\n%s", got, want)
	}
}

// docRoutesOutput is the output of the `swarmgate routes` example in
// docs/status.md: the console block after the comment that names
// TestPrintRoutes, without its command line.
func docRoutesOutput(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/status.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "checked by TestPrintRoutes")
	if ok {
		_, block, ok = strings.Cut(block, "```console\n$ swarmgate routes")
	}
	if ok {
		_, block, ok = strings.Cut(block, "\n")
	}
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("docs/status.md has no `swarmgate routes` example marked for TestPrintRoutes")
	}
	return block
}

// TestRoutesCommand: `swarmgate routes` reads a running edge's admin API,
// and shows an endpoint that passive health ejected with the end of its
// ejection.
func TestRoutesCommand(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	pool := balancer.NewPool(balancer.PoolOptions{Now: clock, BaseEjection: 30 * time.Second})
	p := proxy.New(proxy.Options{Pool: pool, Registerer: prometheus.NewRegistry()})
	defer p.Close()
	e := edge.New(edge.Core{Proxy: p, Pool: pool, Now: clock})
	defer e.Close()
	ejected := testkit.UnusedAddr(t)
	stable := testkit.Route("web", []string{"app.example.org"}, "/", ejected)
	stable.Weight = 75
	canary := testkit.Route("web-canary", []string{"app.example.org"}, "/", ejected)
	canary.Weight, canary.CreatedAt = 25, now
	e.Apply(route.Config{Routes: []route.Route{stable, canary}})
	pool.Endpoint(ejected).Acquire()(0, balancer.ConnectFailure)
	admin := httptest.NewServer(edge.NewAdmin(e, prometheus.NewRegistry(), edge.AdminOptions{}).Handler())
	defer admin.Close()

	cmd := newRoutesCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--admin", admin.URL})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two routes:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"web ", "75 (75%)", "0/1 up", ejected + " ejected until 09:00:30Z"},
		{"web-canary", "25 (25%)", "0/1 up", ejected + " ejected until 09:00:30Z"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %q lacks %q", lines[i+1], w)
			}
		}
	}
}
