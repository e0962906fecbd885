package edge

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestStatusExactPath: the status page shows an exact route's path as
// "= /health", in a group of its own beside the prefix route of the same
// path (two groups, neither sharing weight with the other), the filter
// finds it by that text, and /api/routes says "exact".
func TestStatusExactPath(t *testing.T) {
	probe := testkit.Route("probe", []string{"app.example.org"}, "/health", "127.0.0.1:1")
	probe.Exact, probe.CreatedAt = true, time.Unix(1, 0)
	tree := testkit.Route("tree", []string{"app.example.org"}, "/health", "127.0.0.1:2")
	tree.CreatedAt = time.Unix(2, 0)
	te := startEdge(t, route.Config{Routes: []route.Route{probe, tree}}, time.Second)
	h := NewAdmin(te.e, prometheus.NewRegistry(), AdminOptions{}).Handler()
	get := func(path string) string {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "127.0.0.1:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}

	body := get("/status/body")
	if n := strings.Count(body, `<article class="route"`); n != 2 {
		t.Errorf("%d route groups, want 2 (the exact and the prefix route apart)", n)
	}
	for _, want := range []string{`<span class="path">= /health</span>`, `<span class="path">/health</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if filtered := get("/status/body?q=%3D+%2Fhealth"); strings.Count(filtered, `<article class="route"`) != 1 ||
		!strings.Contains(filtered, `<span class="path">= /health</span>`) {
		t.Errorf("the filter \"= /health\" does not find the exact route alone:\n%s", filtered)
	}

	page := newStatusPage(NewAdmin(te.e, prometheus.NewRegistry(), AdminOptions{}).Status(), "")
	for _, g := range page.Groups {
		if len(g.Routes) != 1 || g.Routes[0].Share != -1 {
			t.Errorf("group %s %v: %d routes, share %d; want one route alone", g.Path, g.Hosts, len(g.Routes), g.Routes[0].Share)
		}
	}

	var routes struct {
		Routes []struct {
			Route string `json:"route"`
			Path  string `json:"path"`
			Exact *bool  `json:"exact"`
		} `json:"routes"`
	}
	if err := json.Unmarshal([]byte(get("/api/routes")), &routes); err != nil {
		t.Fatal(err)
	}
	if len(routes.Routes) != 2 {
		t.Fatalf("/api/routes lists %d routes, want 2", len(routes.Routes))
	}
	for _, r := range routes.Routes {
		exact := r.Exact != nil && *r.Exact
		if r.Path != "/health" || exact != (r.Route == "probe") || r.Route == "tree" && r.Exact != nil {
			t.Errorf("/api/routes %s: path %q exact %v", r.Route, r.Path, r.Exact)
		}
	}
}
