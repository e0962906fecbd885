package discovery

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmgate/swarmgate/route"
)

func readStack(t *testing.T, name string) []StackService {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := ParseStack(data)
	if err != nil {
		t.Fatalf("ParseStack(%s): %v", name, err)
	}
	return svcs
}

// parseAll runs every stack service through ParseLabels, failing on errors.
func parseAll(t *testing.T, svcs []StackService) map[string][]route.Route {
	t.Helper()
	out := map[string][]route.Route{}
	for _, s := range svcs {
		routes, errs := ParseLabels(s.Name, s.Labels)
		for _, e := range errs {
			t.Errorf("%v", e)
		}
		out[s.Name] = routes
	}
	return out
}

func TestParseStackSwarmgate(t *testing.T) {
	svcs := readStack(t, "stack-swarmgate.yml")
	want := []StackService{
		{Name: "api", Labels: map[string]string{
			"swarmgate.hosts": "api.shop.example.org", "swarmgate.port": "9000", "swarmgate.backend.h2c": "true",
			"swarmgate.redirects": "/v1=>/v2 302", "com.example.team": "payments",
		}},
		{Name: "db", Labels: map[string]string{"com.example.tier": "data"}, Warnings: []string{
			"labels: swarmgate.port is a container label, which Swarm routing ignores; move it under deploy.labels",
			"labels: swarmgate.tcp.port is a container label, which Swarm routing ignores; move it under deploy.labels",
		}},
		{Name: "web", Labels: map[string]string{
			"swarmgate.network": "shop-net", "swarmgate.cluster": "public",
			"swarmgate.hosts": "shop.example.org,www.shop.example.org", "swarmgate.port": "8080",
			"swarmgate.tls": "auto", "swarmgate.sticky": "shop_session", "swarmgate.path.strip": "false",
			"swarmgate.routes.admin.hosts": "admin.shop.example.org", "swarmgate.routes.admin.path": "/admin/",
		}},
		{Name: "worker", Labels: map[string]string{}},
	}
	if !reflect.DeepEqual(svcs, want) {
		t.Fatalf("ParseStack:\n got %+v\nwant %+v", svcs, want)
	}

	routes := parseAll(t, svcs)
	wantRoutes := map[string][]route.Route{
		"api": {httpRoute(func(r *route.Route) {
			r.Service, r.Hosts, r.Port, r.H2C = "api", []string{"api.shop.example.org"}, 9000, true
			r.Redirects = []route.Redirect{{From: "/v1", To: "/v2", Code: 302}}
		})},
		"db": nil,
		"web": {
			httpRoute(func(r *route.Route) {
				r.Service, r.Hosts = "web", []string{"shop.example.org", "www.shop.example.org"}
				r.Network, r.Cluster, r.TLS, r.TLSRedirect = "shop-net", "public", route.TLSAuto, true
				r.Sticky, r.Balancer = "shop_session", route.BalancerCookie
			}),
			httpRoute(func(r *route.Route) {
				r.Service, r.Name, r.Hosts, r.Path = "web", "admin", []string{"admin.shop.example.org"}, "/admin"
				r.Network, r.Cluster = "shop-net", "public"
			}),
		},
		"worker": nil,
	}
	if !reflect.DeepEqual(routes, wantRoutes) {
		t.Errorf("routes:\n got %+v\nwant %+v", routes, wantRoutes)
	}
}

// TestParseStackInterlock reads a stack written for Interlock and checks the
// routes it produces unchanged.
func TestParseStackInterlock(t *testing.T) {
	svcs := readStack(t, "stack-interlock.yml")
	names := make([]string, len(svcs))
	for i, s := range svcs {
		names[i] = s.Name
		if len(s.Warnings) > 0 {
			t.Errorf("%s: unexpected warnings %v", s.Name, s.Warnings)
		}
	}
	if want := []string{"catalog", "fallback", "legacy", "storefront", "vault"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	if got := svcs[2].Labels["com.docker.lb.ip_hash"]; got != "true" {
		t.Errorf("unquoted YAML boolean read as %q, want \"true\"", got)
	}

	routes := parseAll(t, svcs)
	want := map[string][]route.Route{
		"catalog": {httpRoute(func(r *route.Route) {
			r.Service, r.Hosts, r.Port, r.Network = "catalog", []string{"store.acme.test"}, 8000, "store-net"
			r.Path, r.Strip, r.Backend = "/catalog", true, route.BackendVIP
		})},
		"fallback": {httpRoute(func(r *route.Route) {
			r.Service, r.Hosts, r.Default, r.BackendTLS = "fallback", nil, true, route.BackendTLSOn
		})},
		"legacy": {httpRoute(func(r *route.Route) {
			r.Service, r.Hosts, r.Balancer, r.Cluster = "legacy", []string{"old.acme.test", "new.acme.test"}, route.BalancerIPHash, "us-east"
			r.Redirects = []route.Redirect{{From: "http://old.acme.test", To: "http://new.acme.test", Code: 302}}
		})},
		"storefront": {httpRoute(func(r *route.Route) {
			r.Service, r.Hosts, r.Network = "storefront", []string{"store.acme.test"}, "store-net"
			r.TLS, r.TLSRedirect, r.Sticky, r.Balancer = "acme_store.acme.test", true, "cart", route.BalancerCookie
		})},
		"vault": {l4Route(func(r *route.Route) {
			r.Service, r.SNI, r.TLS, r.Port, r.Network = "vault", []string{"vault.acme.test"}, route.TLSPassthrough, 8443, "store-net"
		})},
	}
	if !reflect.DeepEqual(routes, want) {
		t.Errorf("routes:\n got %+v\nwant %+v", routes, want)
	}
}

func TestParseStackForms(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []StackService
	}{
		{"empty file", "", []StackService{}},
		{"no services", "version: '3'\nnetworks: {}\n", []StackService{}},
		{"service with null body", "services:\n  a:\n", []StackService{{Name: "a", Labels: map[string]string{}}}},
		{"null labels", "services:\n  a:\n    deploy:\n      labels:\n", []StackService{{Name: "a", Labels: map[string]string{}}}},
		{"list form: bare key, '=' in value, empty value",
			"services:\n  a:\n    deploy:\n      labels: [\"k\", \"r=/a=>/b\", \"e=\"]\n",
			[]StackService{{Name: "a", Labels: map[string]string{"k": "", "r": "/a=>/b", "e": ""}}}},
		{"map form: scalars of every type, null",
			"services:\n  a:\n    deploy:\n      labels:\n        i: 8080\n        b: true\n        f: 1.5\n        n: ~\n        s: 'x'\n",
			[]StackService{{Name: "a", Labels: map[string]string{"i": "8080", "b": "true", "f": "1.5", "n": "", "s": "x"}}}},
		{"merge keys: own keys win, lists of merges",
			"x: &a {k: 1, j: 2}\ny: &b {m: 3}\nservices:\n  s:\n    deploy:\n      labels:\n        <<: [*a, *b]\n        k: own\n",
			[]StackService{{Name: "s", Labels: map[string]string{"k": "own", "j": "2", "m": "3"}}}},
		{"aliased label block", "x: &l [\"a=1\"]\nservices:\n  s:\n    deploy:\n      labels: *l\n",
			[]StackService{{Name: "s", Labels: map[string]string{"a": "1"}}}},
		{"container labels in list form warn, others do not",
			"services:\n  s:\n    labels: [\"com.docker.lb.hosts=a\", \"other=1\"]\n",
			[]StackService{{Name: "s", Labels: map[string]string{}, Warnings: []string{
				"labels: com.docker.lb.hosts is a container label, which Swarm routing ignores; move it under deploy.labels",
			}}}},
		{"$$ is $, as docker stack deploy reads it; a lone $ stays",
			"services:\n  a:\n    deploy:\n      labels:\n        - u=test:$$apr1$$H6uskkkW$$IgXLP6ewTrSuBkTrqE8wj/\n        - v=$HOME $$$$\n",
			[]StackService{{Name: "a", Labels: map[string]string{"u": "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "v": "$HOME $$"}}}},
		{"sorted by name", "services:\n  b: {}\n  a: {}\n  c: {}\n",
			[]StackService{{Name: "a", Labels: map[string]string{}}, {Name: "b", Labels: map[string]string{}}, {Name: "c", Labels: map[string]string{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStack([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseStackErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"not YAML", "services: [", "discovery: stack file:"},
		{"services not a mapping", "services: [a, b]\n", "discovery: stack file:"},
		{"labels a string", "services:\n  a:\n    deploy:\n      labels: oops\n", `service "a": deploy.labels: line 4`},
		{"label value a mapping", "services:\n  a:\n    deploy:\n      labels:\n        k: {x: 1}\n", "label k: want a plain value"},
		{"list item not a string", "services:\n  a:\n    deploy:\n      labels:\n        - {k: v}\n", `want a "key=value" string`},
		{"list item without a name", "services:\n  a:\n    deploy:\n      labels: [\"=v\"]\n", "label with no name"},
		{"list label twice", "services:\n  a:\n    deploy:\n      labels: [\"k=1\", \"k=2\"]\n", "label k is set twice"},
		{"bad container labels", "services:\n  a:\n    labels: 5\n", `service "a": labels: line 3`},
		{"merge of a non-mapping", "x: &a [1]\nservices:\n  a:\n    deploy:\n      labels:\n        <<: *a\n", "merge needs a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStack([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseStack = %v, %v; want an error containing %q", got, err, tt.want)
			}
		})
	}
}

// TestLabelsDocExamples keeps the stack examples of LABELS.md valid: every
// YAML block with a services: key must parse without a label error.
func TestLabelsDocExamples(t *testing.T) {
	doc, err := os.ReadFile("LABELS.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, part := range strings.Split(string(doc), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if !strings.HasPrefix(block, "services:") && !strings.HasPrefix(block, "version:") {
			continue
		}
		blocks++
		svcs, err := ParseStack([]byte(block))
		if err != nil {
			t.Errorf("%v in:\n%s", err, block)
			continue
		}
		for _, s := range svcs {
			if _, errs := ParseLabels(s.Name, s.Labels); errs != nil {
				t.Errorf("%v in:\n%s", errs, block)
			}
		}
	}
	if blocks < 3 {
		t.Errorf("found %d stack examples in LABELS.md, want at least 3", blocks)
	}
}
