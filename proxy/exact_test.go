package proxy

import (
	"reflect"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestExactPathRoutes: an exact route and a prefix route of the same host
// and path, through a real listener to real backends. The exact route takes
// the path itself and nothing below or beside it; the prefix route takes
// what is below; the host's root route the rest. Stripping an exact path
// forwards "/".
func TestExactPathRoutes(t *testing.T) {
	exact, prefix, web, stripped, docs := testkit.Backend(t, "exact"), testkit.Backend(t, "prefix"),
		testkit.Backend(t, "web"), testkit.Backend(t, "stripped"), testkit.Backend(t, "docs")
	health := testkit.Route("health", []string{"app.example.org"}, "/health", testkit.Addr(exact))
	health.Exact = true
	health.Priority = -1 // an exact route wins over its path's prefix route whatever the priorities
	status := testkit.Route("status", []string{"app.example.org"}, "/status", testkit.Addr(stripped))
	status.Exact, status.Strip = true, true
	slash := testkit.Route("docs", []string{"app.example.org"}, "/docs/", testkit.Addr(docs))
	slash.Exact = true
	e := startEdge(t, route.Config{Routes: []route.Route{
		health,
		testkit.Route("health-tree", []string{"app.example.org"}, "/health", testkit.Addr(prefix)),
		testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(web)),
		status, slash,
	}})
	for _, tt := range []struct{ path, want string }{
		{"/health", "exact GET /health"},
		{"/health?full=1", "exact GET /health?full=1"},
		{"/health/", "prefix GET /health/"},
		{"/health/x", "prefix GET /health/x"},
		{"/healthz", "web GET /healthz"},
		{"/x/../health", "exact GET /health"}, // cleaned first
		{"/status", "stripped GET /"},
		{"/status/x", "web GET /status/x"},
		{"/docs/", "docs GET /docs/"},
		{"/docs", "web GET /docs"},
		{"/docs/intro", "web GET /docs/intro"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := e.do(t, "GET", "app.example.org", tt.path, nil)
			if resp.StatusCode != 200 || body != tt.want {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, tt.want)
			}
		})
	}

	// Describe says which route is exact.
	views := map[string]RouteView{}
	for _, v := range e.p.Table().Describe(time.Now()) {
		views[v.Route] = v
	}
	if v := views["health"]; v.Path != "/health" || !v.Exact {
		t.Errorf("Describe health = path %q exact %v, want /health exact", v.Path, v.Exact)
	}
	if v := views["docs"]; v.Path != "/docs/" || !v.Exact {
		t.Errorf("Describe docs = path %q exact %v, want /docs/ (as written) exact", v.Path, v.Exact)
	}
	if v := views["health-tree"]; v.Path != "/health" || v.Exact {
		t.Errorf("Describe health-tree = path %q exact %v, want /health prefix", v.Path, v.Exact)
	}
}

// TestExactPathTableChanges: a table derived from the one in force as an
// exact route comes, changes to a prefix route and back, and leaves, serves
// what a table built from nothing serves.
func TestExactPathTableChanges(t *testing.T) {
	r := func(name, path string, exact bool, prio int) route.Route {
		x := testkit.Route(name, []string{"a.example.org"}, path, "10.0.0.1:80")
		x.Exact, x.Priority, x.CreatedAt = exact, prio, time.Unix(1, 0)
		return x
	}
	probes := [][2]string{{"a.example.org", "/health"}, {"a.example.org", "/health/x"}, {"a.example.org", "/healthz"}, {"a.example.org", "/"}}
	steps := [][]route.Route{
		{r("prefix", "/health", false, 0)},
		{r("prefix", "/health", false, 0), r("exact", "/health", true, 0)},
		{r("prefix", "/health", false, 0), r("exact", "/health", false, 0)}, // same host, path, priority: now one weighted group
		{r("prefix", "/health", false, 0), r("exact", "/health", true, 3)},
		{r("exact", "/health", true, 3), r("root", "/", false, 0)},
		{r("root", "/", false, 0)},
	}
	p := New(Options{Logger: zap.NewNop()})
	defer p.Close()
	for i, routes := range steps {
		cfg := route.Config{Routes: routes}
		p.Update(cfg)
		fresh := New(Options{Logger: zap.NewNop()})
		fresh.Update(cfg)
		got, want := tableView(p.Table(), probes), tableView(fresh.Table(), probes)
		fresh.Close()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: the derived table differs from a full build:\n%s", i, diffLines(got, want))
		}
	}
	// And the last steps route as they should: step 4 has the exact route
	// and a root, so /health/x goes to the root.
	p.Update(route.Config{Routes: steps[4]})
	for _, c := range []struct{ path, want string }{{"/health", "exact"}, {"/health/x", "root"}, {"/healthz", "root"}} {
		g, m, ok := p.Table().http.Lookup("a.example.org", c.path)
		if !ok || g.targets[0].id != c.want || m.Exact != (c.want == "exact") {
			t.Errorf("%s: routed to %v %+v, want %s", c.path, g, m, c.want)
		}
	}
}
