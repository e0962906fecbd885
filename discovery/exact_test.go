package discovery

import (
	"reflect"
	"testing"

	"github.com/swarmgate/swarmgate/route"
)

// TestExactPathLabels: swarmgate.path.exact makes the route's path match
// itself only, on the default route and on named ones, with the path kept
// as written; bad values and misplaced ones are label errors.
func TestExactPathLabels(t *testing.T) {
	t.Run("exact", func(t *testing.T) {
		checkRoutes(t, labels("swarmgate.path", "/health", "swarmgate.path.exact", "true"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path, r.Exact = "/health", true })})
	})
	t.Run("false is a prefix", func(t *testing.T) {
		checkRoutes(t, labels("swarmgate.path", "/health", "swarmgate.path.exact", "false"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path = "/health" })})
	})
	t.Run("an exact path keeps its slash", func(t *testing.T) {
		checkRoutes(t, labels("swarmgate.path", "/docs/", "swarmgate.path.exact", "true"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path, r.Exact = "/docs/", true })})
	})
	t.Run("a prefix drops its slash", func(t *testing.T) {
		checkRoutes(t, labels("swarmgate.path", "/docs/"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path = "/docs" })})
	})
	t.Run("without a path: the root only", func(t *testing.T) {
		checkRoutes(t, labels("swarmgate.path.exact", "true"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Exact = true })})
	})
	t.Run("strip an exact path: / is forwarded", func(t *testing.T) {
		checkRoutes(t, labels("swarmgate.path", "/health", "swarmgate.path.exact", "true", "swarmgate.path.strip", "true"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path, r.Exact, r.Strip = "/health", true, true })})
	})
	t.Run("named routes: an exact and a prefix route of one path", func(t *testing.T) {
		// The example of LABELS.md's Paths section.
		checkRoutes(t, only("swarmgate.port", "8080",
			"swarmgate.routes.probe.hosts", "app.example.org",
			"swarmgate.routes.probe.path", "/health",
			"swarmgate.routes.probe.path.exact", "true",
			"swarmgate.routes.tree.hosts", "app.example.org",
			"swarmgate.routes.tree.path", "/health"),
			[]route.Route{
				httpRoute(func(r *route.Route) { r.Name, r.Path, r.Exact = "probe", "/health", true }),
				httpRoute(func(r *route.Route) { r.Name, r.Path = "tree", "/health" }),
			})
	})

	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   []wantErr
	}{
		{"not a boolean", labels("swarmgate.path", "/health", "swarmgate.path.exact", "yes"),
			[]wantErr{{"swarmgate.path.exact", "true or false"}}},
		{"empty", labels("swarmgate.path", "/health", "swarmgate.path.exact", ""),
			[]wantErr{{"swarmgate.path.exact", "empty value"}}},
		{"named, not a boolean", labels("swarmgate.routes.probe.hosts", "a.example.org", "swarmgate.routes.probe.path.exact", "1x"),
			[]wantErr{{"swarmgate.routes.probe.path.exact", "true or false"}}},
		{"a bad exact path", labels("swarmgate.path", "/health?full", "swarmgate.path.exact", "true"),
			[]wantErr{{"swarmgate.path", "no query"}}},
		{"strip the exact root", labels("swarmgate.path.exact", "true", "swarmgate.path.strip", "true"),
			[]wantErr{{"swarmgate.path.strip", "no prefix to strip"}}},
		{"on an L4 route", only("swarmgate.tcp.port", "5432", "swarmgate.port", "5432", "swarmgate.path.exact", "true"),
			[]wantErr{{"swarmgate.path.exact", "HTTP routes only"}}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkRejected(t, tt.labels, tt.want) })
	}
}

// TestExactPathRoutesFile: the routes file takes the label as YAML writes
// a boolean, unquoted.
func TestExactPathRoutesFile(t *testing.T) {
	cfg, err := ParseRoutesFile([]byte(`
services:
  - name: probe
    labels:
      swarmgate.hosts: app.example.org
      swarmgate.path: /health
      swarmgate.path.exact: true
      swarmgate.port: 9000
    endpoints: ["127.0.0.1"]
  - name: web
    labels:
      swarmgate.hosts: app.example.org
      swarmgate.port: 9001
    endpoints: ["127.0.0.1"]
`))
	if err != nil || len(cfg.Errors) != 0 {
		t.Fatalf("err %v, label errors %v", err, cfg.Errors)
	}
	if len(cfg.Routes) != 2 || !cfg.Routes[0].Exact || cfg.Routes[0].Path != "/health" || cfg.Routes[1].Exact {
		t.Fatalf("routes %+v: want probe exact at /health, web a prefix", cfg.Routes)
	}
}

// TestTraefikPathIsExact: Traefik's Path() is an exact route, PathPrefix a
// prefix one; both of one path are two routes; a swarmgate label wins.
func TestTraefikPathIsExact(t *testing.T) {
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   []route.Route
	}{
		{"Path", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && Path(`/health`)"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path, r.Exact = "/health", true })}},
		{"Path with a slash", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && Path(`/docs/`)"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path, r.Exact = "/docs/", true })}},
		{"Path and PathPrefix of one path", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && (Path(`/a`) || PathPrefix(`/a`))"),
			[]route.Route{
				tRoute(func(r *route.Route) { r.Path, r.Exact = "/a", true }),
				tRoute(func(r *route.Route) { r.Name, r.Path = "web-2", "/a" }),
			}},
		{"PathPrefix narrowed by Path", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && PathPrefix(`/a`) && Path(`/a/b`)"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path, r.Exact = "/a/b", true })}},
		{"stripprefix of an exact path", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && Path(`/health`)",
			"traefik.http.routers.web.middlewares", "strip",
			"traefik.http.middlewares.strip.stripprefix.prefixes", "/health"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path, r.Exact, r.Strip = "/health", true, true })}},
		{"swarmgate wins", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && Path(`/health`)",
			"swarmgate.routes.web.path.exact", "false"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path = "/health" })}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseLabelsFor("web", tt.labels, withTraefik)
			for _, e := range errs {
				t.Errorf("unexpected error: %v", e)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("routes:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
