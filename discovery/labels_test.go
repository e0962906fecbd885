package discovery

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

func TestParseLabelsRoutes(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   []route.Route
	}{
		{"defaults", labels(), []route.Route{httpRoute(nil)}},
		{"hosts lower-cased, trimmed, deduplicated, trailing dot dropped",
			labels("swarmgate.hosts", " App.Example.ORG , www.example.org.,*.Apps.example.org,app.example.org"),
			[]route.Route{httpRoute(func(r *route.Route) {
				r.Hosts = []string{"app.example.org", "www.example.org", "*.apps.example.org"}
			})}},
		{"host that is an IPv4 address", labels("swarmgate.hosts", "10.0.0.1"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Hosts = []string{"10.0.0.1"} })}},
		{"punycode host", labels("swarmgate.hosts", "xn--bcher-kva.example"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Hosts = []string{"xn--bcher-kva.example"} })}},
		{"port bounds low", labels("swarmgate.port", "1"), []route.Route{httpRoute(func(r *route.Route) { r.Port = 1 })}},
		{"port bounds high", labels("swarmgate.port", " 65535 "), []route.Route{httpRoute(func(r *route.Route) { r.Port = 65535 })}},
		{"path trailing slash dropped", labels("swarmgate.path", "/api/"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path = "/api" })}},
		{"root path kept", labels("swarmgate.path", "/"), []route.Route{httpRoute(nil)}},
		{"path with percent-encoding and dots inside segments", labels("swarmgate.path", "/a%20b/v1.2..3"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path = "/a%20b/v1.2..3" })}},
		{"path.strip", labels("swarmgate.path", "/api", "swarmgate.path.strip", "true"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Path, r.Strip = "/api", true })}},
		{"path.strip false on root", labels("swarmgate.path.strip", "0"), []route.Route{httpRoute(nil)}},
		{"priority negative", labels("swarmgate.priority", "-5"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Priority = -5 })}},
		{"priority positive", labels("swarmgate.priority", "1000000"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Priority = 1000000 })}},
		{"weight 0 drains", labels("swarmgate.weight", "0"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Weight = 0 })}},
		{"weight max", labels("swarmgate.weight", "10000"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Weight = 10000 })}},
		{"backend vip", labels("swarmgate.backend", "VIP"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Backend = route.BackendVIP })}},
		{"backend task", labels("swarmgate.backend", "task"), []route.Route{httpRoute(nil)}},
		{"network", labels("swarmgate.network", "front_net-1.a"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Network = "front_net-1.a" })}},
		{"balancer round-robin", labels("swarmgate.balancer", "round-robin"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Balancer = route.BalancerRoundRobin })}},
		{"balancer least-conn any case", labels("swarmgate.balancer", "Least-Conn"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Balancer = route.BalancerLeastConn })}},
		{"balancer ip-hash", labels("swarmgate.balancer", "ip-hash"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Balancer = route.BalancerIPHash })}},
		{"balancer p2c", labels("swarmgate.balancer", "p2c"), []route.Route{httpRoute(nil)}},
		{"sticky makes the balancer cookie", labels("swarmgate.sticky", "SESSION_id"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Sticky, r.Balancer = "SESSION_id", route.BalancerCookie })}},
		{"sticky keeps an explicit balancer", labels("swarmgate.sticky", "sid", "swarmgate.balancer", "least-conn"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Sticky, r.Balancer = "sid", route.BalancerLeastConn })}},
		{"balancer cookie with sticky", labels("swarmgate.sticky", "sid", "swarmgate.balancer", "cookie"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Sticky, r.Balancer = "sid", route.BalancerCookie })}},
		{"tls auto redirects by default", labels("swarmgate.tls", "auto"),
			[]route.Route{httpRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true })}},
		{"tls certificate name", labels("swarmgate.tls", "Example.org_2026-wild"),
			[]route.Route{httpRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = "Example.org_2026-wild", true })}},
		{"tls keyword any case", labels("swarmgate.tls", "AUTO"),
			[]route.Route{httpRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true })}},
		{"tls off explicit", labels("swarmgate.tls", "off"), []route.Route{httpRoute(nil)}},
		{"tls.redirect false", labels("swarmgate.tls", "auto", "swarmgate.tls.redirect", "false"),
			[]route.Route{httpRoute(func(r *route.Route) { r.TLS = route.TLSAuto })}},
		{"tls.redirect true", labels("swarmgate.tls", "site", "swarmgate.tls.redirect", "TRUE"),
			[]route.Route{httpRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = "site", true })}},
		{"tls.redirect false without tls", labels("swarmgate.tls.redirect", "false"), []route.Route{httpRoute(nil)}},
		{"tls.hsts years", labels("swarmgate.tls", "auto", "swarmgate.tls.hsts", "1y"),
			[]route.Route{httpRoute(func(r *route.Route) { r.TLS, r.TLSRedirect, r.HSTS = route.TLSAuto, true, "max-age=31536000" })}},
		{"tls.hsts days and directives", labels("swarmgate.tls", "site", "swarmgate.tls.hsts", "180d; includeSubDomains ;PRELOAD"),
			[]route.Route{httpRoute(func(r *route.Route) {
				r.TLS, r.TLSRedirect, r.HSTS = "site", true, "max-age=15552000; includeSubDomains; preload"
			})}},
		{"tls.hsts duration", labels("swarmgate.tls", "site", "swarmgate.tls.hsts", "1h"),
			[]route.Route{httpRoute(func(r *route.Route) { r.TLS, r.TLSRedirect, r.HSTS = "site", true, "max-age=3600" })}},
		{"backend.tls on", labels("swarmgate.backend.tls", "on"),
			[]route.Route{httpRoute(func(r *route.Route) { r.BackendTLS = route.BackendTLSOn })}},
		{"backend.tls true", labels("swarmgate.backend.tls", "true"),
			[]route.Route{httpRoute(func(r *route.Route) { r.BackendTLS = route.BackendTLSOn })}},
		{"backend.tls insecure", labels("swarmgate.backend.tls", "insecure"),
			[]route.Route{httpRoute(func(r *route.Route) { r.BackendTLS = route.BackendTLSInsecure })}},
		{"backend.tls false", labels("swarmgate.backend.tls", "false"), []route.Route{httpRoute(nil)}},
		{"backend.tls off", labels("swarmgate.backend.tls", "off"), []route.Route{httpRoute(nil)}},
		{"backend.h2c", labels("swarmgate.backend.h2c", "1"),
			[]route.Route{httpRoute(func(r *route.Route) { r.H2C = true })}},
		{"request.buffering off", labels("swarmgate.request.buffering", "false"),
			[]route.Route{httpRoute(func(r *route.Route) { r.StreamBody = true })}},
		{"request.buffering on", labels("swarmgate.request.buffering", "true"),
			[]route.Route{httpRoute(func(*route.Route) {})}},
		{"health.path with the default interval", labels("swarmgate.health.path", "/healthz?full=1"),
			[]route.Route{httpRoute(func(r *route.Route) { r.HealthPath, r.HealthInterval = "/healthz?full=1", route.DefaultHealthInterval })}},
		{"health.interval", labels("swarmgate.health.path", "/ping", "swarmgate.health.interval", "2s"),
			[]route.Route{httpRoute(func(r *route.Route) { r.HealthPath, r.HealthInterval = "/ping", 2*time.Second })}},
		{"timeout", labels("swarmgate.timeout", "1m30s"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Timeout = 90 * time.Second })}},
		{"timeout upper bound", labels("swarmgate.timeout", "1h"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Timeout = time.Hour })}},
		{"redirects: URLs and paths, codes, trailing separator",
			labels("swarmgate.redirects", "HTTP://Old.Example.org/ => https://new.example.org:8443/x/ 302 ; /a/=>/b;/c=>https://c.example.org;"),
			[]route.Route{httpRoute(func(r *route.Route) {
				r.Redirects = []route.Redirect{
					{From: "http://old.example.org", To: "https://new.example.org:8443/x", Code: 302},
					{From: "/a", To: "/b", Code: 301},
					{From: "/c", To: "https://c.example.org", Code: 301},
				}
			})}},
		{"redirects explicit 301", labels("swarmgate.redirects", "/old=>/new 301"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Redirects = []route.Redirect{{From: "/old", To: "/new", Code: 301}} })}},
		{"cluster", labels("swarmgate.cluster", "east"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Cluster = "east" })}},
		{"tcp.port", only("swarmgate.tcp.port", "15432", "swarmgate.port", "5432", "unrelated", "x"),
			[]route.Route{l4Route(func(r *route.Route) { r.TCPPort, r.Port = 15432, 5432 })}},
		{"tcp.port with weight, priority, timeout, balancer",
			only("swarmgate.tcp.port", "2222", "swarmgate.port", "22", "swarmgate.weight", "5",
				"swarmgate.priority", "1", "swarmgate.timeout", "5s", "swarmgate.balancer", "least-conn"),
			[]route.Route{l4Route(func(r *route.Route) {
				r.TCPPort, r.Port, r.Weight, r.Priority, r.Timeout, r.Balancer = 2222, 22, 5, 1, 5*time.Second, route.BalancerLeastConn
			})}},
		{"tcp.sni", only("swarmgate.tcp.sni", "DB.example.org,*.db.example.org", "swarmgate.port", "8443"),
			[]route.Route{l4Route(func(r *route.Route) {
				r.Port, r.SNI, r.TLS = 8443, []string{"db.example.org", "*.db.example.org"}, route.TLSPassthrough
			})}},
		{"tcp.proxy-protocol v2", only("swarmgate.tcp.port", "5432", "swarmgate.port", "5432", "swarmgate.tcp.proxy-protocol", "V2"),
			[]route.Route{l4Route(func(r *route.Route) { r.TCPPort, r.Port, r.ProxyProtocol = 5432, 5432, 2 })}},
		{"tcp.proxy-protocol 1 on sni", only("swarmgate.tcp.sni", "db.example.org", "swarmgate.port", "8443", "swarmgate.tcp.proxy-protocol", "1"),
			[]route.Route{l4Route(func(r *route.Route) {
				r.Port, r.SNI, r.TLS, r.ProxyProtocol = 8443, []string{"db.example.org"}, route.TLSPassthrough, 1
			})}},
		{"tcp.sni with tls passthrough", only("swarmgate.tcp.sni", "db.example.org", "swarmgate.tls", "passthrough", "swarmgate.port", "8443"),
			[]route.Route{l4Route(func(r *route.Route) { r.Port, r.SNI, r.TLS = 8443, []string{"db.example.org"}, route.TLSPassthrough })}},
		{"tls passthrough with hosts means tcp.sni", labels("swarmgate.tls", "passthrough"),
			[]route.Route{l4Route(func(r *route.Route) { r.SNI, r.TLS = []string{"app.example.org"}, route.TLSPassthrough })}},
		{"tls passthrough merges hosts into tcp.sni",
			labels("swarmgate.tls", "passthrough", "swarmgate.tcp.sni", "b.example.org,app.example.org"),
			[]route.Route{l4Route(func(r *route.Route) {
				r.SNI, r.TLS = []string{"b.example.org", "app.example.org"}, route.TLSPassthrough
			})}},
		{"default backend without hosts", only("swarmgate.default", "true", "swarmgate.port", "80"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Hosts, r.Default, r.Port = nil, true, 80 })}},
		{"default backend with hosts", labels("swarmgate.default", "true"),
			[]route.Route{httpRoute(func(r *route.Route) { r.Default = true })}},
		{"all HTTP keys at once",
			labels("swarmgate.path", "/shop", "swarmgate.path.strip", "true", "swarmgate.priority", "3",
				"swarmgate.weight", "20", "swarmgate.network", "shop", "swarmgate.sticky", "s",
				"swarmgate.tls", "shop-cert", "swarmgate.tls.redirect", "false", "swarmgate.backend.tls", "insecure",
				"swarmgate.health.path", "/h", "swarmgate.health.interval", "1h", "swarmgate.timeout", "10ms",
				"swarmgate.redirects", "/old-shop=>/shop", "swarmgate.cluster", "c1"),
			[]route.Route{httpRoute(func(r *route.Route) {
				r.Path, r.Strip, r.Priority, r.Weight, r.Network = "/shop", true, 3, 20, "shop"
				r.Sticky, r.Balancer, r.TLS, r.BackendTLS = "s", route.BalancerCookie, "shop-cert", route.BackendTLSInsecure
				r.HealthPath, r.HealthInterval, r.Timeout, r.Cluster = "/h", time.Hour, 10*time.Millisecond, "c1"
				r.Redirects = []route.Redirect{{From: "/old-shop", To: "/shop", Code: 301}}
			})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkRoutes(t, tt.labels, tt.want)
			for _, r := range got {
				if wantHTTP := len(r.SNI) == 0 && r.TCPPort == 0; r.IsHTTP() != wantHTTP {
					t.Errorf("route %s: IsHTTP() = %v, want %v", r.ID(), r.IsHTTP(), wantHTTP)
				}
			}
		})
	}
}

func TestParseLabelsNothingPublished(t *testing.T) {
	for _, m := range []map[string]string{
		nil,
		{},
		{"com.docker.stack.namespace": "shop", "traefik.enable": "true", "swarmgate": "x", "swarmgateway.hosts": "a"},
	} {
		got, errs := ParseLabels("web", m)
		if got != nil || errs != nil {
			t.Errorf("ParseLabels(%v) = %v, %v; want nil, nil", m, got, errs)
		}
	}
}

func TestParseLabelsNamedRoutes(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   []route.Route
	}{
		{
			name: "service-level port, network, backend, cluster are inherited; nothing else is",
			labels: only(
				"swarmgate.port", "8080", "swarmgate.network", "net", "swarmgate.backend", "vip", "swarmgate.cluster", "east",
				"swarmgate.routes.web.hosts", "www.example.org",
				"swarmgate.routes.api.hosts", "api.example.org", "swarmgate.routes.api.path", "/v1/",
				"swarmgate.routes.api.port", "9090", "swarmgate.routes.api.network", "apinet",
				"swarmgate.routes.api.backend", "task", "swarmgate.routes.api.cluster", "west",
				"swarmgate.routes.api.sticky", "sid",
			),
			want: []route.Route{
				httpRoute(func(r *route.Route) {
					r.Name, r.Hosts, r.Path, r.Port, r.Network, r.Cluster = "api", []string{"api.example.org"}, "/v1", 9090, "apinet", "west"
					r.Sticky, r.Balancer = "sid", route.BalancerCookie
				}),
				httpRoute(func(r *route.Route) {
					r.Name, r.Hosts, r.Network, r.Backend, r.Cluster = "web", []string{"www.example.org"}, "net", route.BackendVIP, "east"
				}),
			},
		},
		{
			name: "default route first, then by name; a named route states its own tls",
			labels: labels(
				"swarmgate.tls", "auto",
				"swarmgate.routes.z.hosts", "z.example.org",
				"swarmgate.routes.a-1.tcp.port", "2222", "swarmgate.routes.a-1.port", "22",
				"swarmgate.routes.B_2.tcp.sni", "b.example.org",
			),
			want: []route.Route{
				httpRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true }),
				l4Route(func(r *route.Route) { r.Name, r.SNI, r.TLS = "B_2", []string{"b.example.org"}, route.TLSPassthrough }),
				l4Route(func(r *route.Route) { r.Name, r.TCPPort, r.Port = "a-1", 2222, 22 }),
				httpRoute(func(r *route.Route) { r.Name, r.Hosts = "z", []string{"z.example.org"} }),
			},
		},
		{
			name: "Interlock service-level values are inherited too",
			labels: only("com.docker.lb.port", "7000", "com.docker.lb.network", "inet",
				"swarmgate.routes.x.hosts", "x.example.org"),
			want: []route.Route{httpRoute(func(r *route.Route) {
				r.Name, r.Hosts, r.Port, r.Network = "x", []string{"x.example.org"}, 7000, "inet"
			})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRoutes(t, tt.labels, tt.want)
		})
	}
}

func TestParseLabelsErrors(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name   string
		labels map[string]string
		want   []wantErr
	}{
		// hosts
		{"empty hosts", labels("swarmgate.hosts", " "), []wantErr{{"swarmgate.hosts", "empty value"}}},
		{"empty host in list", labels("swarmgate.hosts", "a.org,,b.org"), []wantErr{{"swarmgate.hosts", "empty host name"}}},
		{"host with scheme", labels("swarmgate.hosts", "https://a.org"), []wantErr{{"swarmgate.hosts", "no scheme"}}},
		{"host with path", labels("swarmgate.hosts", "a.org/x"), []wantErr{{"swarmgate.hosts", "no path"}}},
		{"host with port", labels("swarmgate.hosts", "a.org:8080"), []wantErr{{"swarmgate.hosts", "no port"}}},
		{"wildcard not first", labels("swarmgate.hosts", "a.*.org"), []wantErr{{"swarmgate.hosts", "whole first label"}}},
		{"bare wildcard", labels("swarmgate.hosts", "*"), []wantErr{{"swarmgate.hosts", "whole first label"}}},
		{"partial wildcard", labels("swarmgate.hosts", "a*.org"), []wantErr{{"swarmgate.hosts", `'*' is not allowed`}}},
		{"underscore", labels("swarmgate.hosts", "a_b.org"), []wantErr{{"swarmgate.hosts", `'_' is not allowed`}}},
		{"hyphen edge", labels("swarmgate.hosts", "-a.org"), []wantErr{{"swarmgate.hosts", "start or end with '-'"}}},
		{"label too long", labels("swarmgate.hosts", long+".org"), []wantErr{{"swarmgate.hosts", "1 to 63"}}},
		{"name too long", labels("swarmgate.hosts", strings.Repeat("a.", 127)+"org"), []wantErr{{"swarmgate.hosts", "1 to 253"}}},
		{"wildcard too long with its *.", labels("swarmgate.hosts", "*."+strings.Repeat("a.", 125)+"org"),
			[]wantErr{{"swarmgate.hosts", "1 to 253"}}},
		{"empty label", labels("swarmgate.hosts", "a..org"), []wantErr{{"swarmgate.hosts", "1 to 63"}}},
		{"unicode host", labels("swarmgate.hosts", "bücher.example"), []wantErr{{"swarmgate.hosts", "punycode"}}},
		// port
		{"port missing", labels("swarmgate.port", "<unset>"), []wantErr{{"swarmgate.port", "required"}}},
		{"port zero", labels("swarmgate.port", "0"), []wantErr{{"swarmgate.port", "1 to 65535"}}},
		{"port too big", labels("swarmgate.port", "65536"), []wantErr{{"swarmgate.port", "1 to 65535"}}},
		{"port not a number", labels("swarmgate.port", "http"), []wantErr{{"swarmgate.port", "1 to 65535"}}},
		// path
		{"path relative", labels("swarmgate.path", "api"), []wantErr{{"swarmgate.path", "starting with /"}}},
		{"path dotdot", labels("swarmgate.path", "/a/../b"), []wantErr{{"swarmgate.path", `".." segments`}}},
		{"path encoded dotdot", labels("swarmgate.path", "/a/%2E%2e/b"), []wantErr{{"swarmgate.path", `".." segments`}}},
		{"path dot", labels("swarmgate.path", "/a/./b"), []wantErr{{"swarmgate.path", `".." segments`}}},
		{"path double slash", labels("swarmgate.path", "/a//b"), []wantErr{{"swarmgate.path", `"//"`}}},
		{"path query", labels("swarmgate.path", "/a?b=1"), []wantErr{{"swarmgate.path", "no query"}}},
		{"path fragment", labels("swarmgate.path", "/a#b"), []wantErr{{"swarmgate.path", "no query or fragment"}}},
		{"path space", labels("swarmgate.path", "/a b"), []wantErr{{"swarmgate.path", "percent-encode"}}},
		{"path bad escape", labels("swarmgate.path", "/a%zz"), []wantErr{{"swarmgate.path", "percent-encoding"}}},
		{"path character outside RFC 3986 (the router's rule)", labels("swarmgate.path", "/a|b"),
			[]wantErr{{"swarmgate.path", `'|' is not allowed in a path (percent-encode it)`}}},
		{"path too long", labels("swarmgate.path", "/"+strings.Repeat("a", 1024)), []wantErr{{"swarmgate.path", "longer than"}}},
		// path.strip
		{"strip not bool", labels("swarmgate.path", "/a", "swarmgate.path.strip", "yes"), []wantErr{{"swarmgate.path.strip", "true or false"}}},
		{"strip root", labels("swarmgate.path.strip", "true"), []wantErr{{"swarmgate.path.strip", "no prefix to strip"}}},
		// numbers
		{"priority not int", labels("swarmgate.priority", "high"), []wantErr{{"swarmgate.priority", "integer"}}},
		{"priority too big", labels("swarmgate.priority", "99999999999"), []wantErr{{"swarmgate.priority", "integer"}}},
		{"weight negative", labels("swarmgate.weight", "-1"), []wantErr{{"swarmgate.weight", "0 to 10000"}}},
		{"weight too big", labels("swarmgate.weight", "10001"), []wantErr{{"swarmgate.weight", "0 to 10000"}}},
		{"weight fraction", labels("swarmgate.weight", "0.5"), []wantErr{{"swarmgate.weight", "0 to 10000"}}},
		// keywords
		{"backend", labels("swarmgate.backend", "dnsrr"), []wantErr{{"swarmgate.backend", "task, vip"}}},
		{"balancer with suggestion", labels("swarmgate.balancer", "roundrobin"),
			[]wantErr{{"swarmgate.balancer", "did you mean round-robin?"}}},
		{"balancer far off", labels("swarmgate.balancer", "random"), []wantErr{{"swarmgate.balancer", "want one of cookie, ip-hash"}}},
		{"balancer cookie without sticky", labels("swarmgate.balancer", "cookie"), []wantErr{{"swarmgate.balancer", "needs swarmgate.sticky"}}},
		{"network", labels("swarmgate.network", "my net"), []wantErr{{"swarmgate.network", "network name"}}},
		{"network leading dot", labels("swarmgate.network", ".net"), []wantErr{{"swarmgate.network", "network name"}}},
		{"cluster", labels("swarmgate.cluster", "east/1"), []wantErr{{"swarmgate.cluster", "cluster name"}}},
		{"cluster too long", labels("swarmgate.cluster", strings.Repeat("c", 129)), []wantErr{{"swarmgate.cluster", "cluster name"}}},
		// sticky
		{"sticky bad char", labels("swarmgate.sticky", "a;b"), []wantErr{{"swarmgate.sticky", "RFC 6265"}}},
		{"sticky space", labels("swarmgate.sticky", "a b"), []wantErr{{"swarmgate.sticky", "RFC 6265"}}},
		{"sticky too long", labels("swarmgate.sticky", long+"x"), []wantErr{{"swarmgate.sticky", "longer than 64"}}},
		{"sticky with vip", labels("swarmgate.sticky", "s", "swarmgate.backend", "vip"), []wantErr{{"swarmgate.sticky", "backend=task"}}},
		{"balancer with vip", labels("swarmgate.balancer", "p2c", "swarmgate.backend", "vip"), []wantErr{{"swarmgate.balancer", "balanced by Swarm"}}},
		// tls
		{"tls bad name", labels("swarmgate.tls", "../etc/key"), []wantErr{{"swarmgate.tls", "certificate name"}}},
		{"tls name with dotdot", labels("swarmgate.tls", "a..b"), []wantErr{{"swarmgate.tls", "certificate name"}}},
		{"tls name with slash", labels("swarmgate.tls", "certs/a"), []wantErr{{"swarmgate.tls", "certificate name"}}},
		{"tls.redirect bad", labels("swarmgate.tls.redirect", "maybe"), []wantErr{{"swarmgate.tls.redirect", "true or false"}}},
		{"tls.redirect without tls", labels("swarmgate.tls.redirect", "true"), []wantErr{{"swarmgate.tls.redirect", "needs swarmgate.tls"}}},
		{"tls.hsts without tls", labels("swarmgate.tls.hsts", "1y"), []wantErr{{"swarmgate.tls.hsts", "needs swarmgate.tls"}}},
		{"tls.hsts bad age", labels("swarmgate.tls", "auto", "swarmgate.tls.hsts", "forever"), []wantErr{{"swarmgate.tls.hsts", "max-age"}}},
		{"tls.hsts bad directive", labels("swarmgate.tls", "auto", "swarmgate.tls.hsts", "1y;always"), []wantErr{{"swarmgate.tls.hsts", "unknown directive"}}},
		{"backend.tls bad", labels("swarmgate.backend.tls", "verify"), []wantErr{{"swarmgate.backend.tls", "off, on or insecure"}}},
		{"backend.h2c bad", labels("swarmgate.backend.h2c", "grpc"), []wantErr{{"swarmgate.backend.h2c", "true or false"}}},
		{"request.buffering bad", labels("swarmgate.request.buffering", "sometimes"), []wantErr{{"swarmgate.request.buffering", "true or false"}}},
		{"h2c with backend.tls", labels("swarmgate.backend.h2c", "true", "swarmgate.backend.tls", "on"),
			[]wantErr{{"swarmgate.backend.h2c", "cleartext"}}},
		// health, timeout
		{"health.path relative", labels("swarmgate.health.path", "health"), []wantErr{{"swarmgate.health.path", "starting with /"}}},
		{"health.path fragment", labels("swarmgate.health.path", "/h#x"), []wantErr{{"swarmgate.health.path", "no fragment"}}},
		{"health.interval without path", labels("swarmgate.health.interval", "5s"), []wantErr{{"swarmgate.health.interval", "needs swarmgate.health.path"}}},
		{"health.interval too short", labels("swarmgate.health.path", "/h", "swarmgate.health.interval", "10ms"),
			[]wantErr{{"swarmgate.health.interval", "1s to 1h0m0s"}}},
		{"health.interval unparsable", labels("swarmgate.health.path", "/h", "swarmgate.health.interval", "5"),
			[]wantErr{{"swarmgate.health.interval", "duration such as"}}},
		{"timeout negative", labels("swarmgate.timeout", "-1s"), []wantErr{{"swarmgate.timeout", "1ms to 1h0m0s"}}},
		{"timeout zero", labels("swarmgate.timeout", "0s"), []wantErr{{"swarmgate.timeout", "1ms to 1h0m0s"}}},
		{"timeout too long", labels("swarmgate.timeout", "25h"), []wantErr{{"swarmgate.timeout", "1ms to 1h0m0s"}}},
		{"timeout unit", labels("swarmgate.timeout", "60"), []wantErr{{"swarmgate.timeout", "duration such as"}}},
		// redirects
		{"redirect no arrow", labels("swarmgate.redirects", "/a->/b"), []wantErr{{"swarmgate.redirects", "want FROM=>TO"}}},
		{"redirect bad code", labels("swarmgate.redirects", "/a=>/b 307"), []wantErr{{"swarmgate.redirects", "status 307: want 301 or 302"}}},
		{"redirect empty rule", labels("swarmgate.redirects", "/a=>/b;;/c=>/d"), []wantErr{{"swarmgate.redirects", "rule 2: empty rule"}}},
		{"redirect only separator", labels("swarmgate.redirects", ";"), []wantErr{{"swarmgate.redirects", "rule 1: empty rule"}}},
		{"redirect ftp", labels("swarmgate.redirects", "ftp://a.org=>/b"), []wantErr{{"swarmgate.redirects", "from: want an absolute http(s) URL"}}},
		{"redirect bare host", labels("swarmgate.redirects", "a.org=>/b"), []wantErr{{"swarmgate.redirects", "from: want an absolute"}}},
		{"redirect empty from", labels("swarmgate.redirects", "=>/b"), []wantErr{{"swarmgate.redirects", "from: empty"}}},
		{"redirect empty to", labels("swarmgate.redirects", "/a=>"), []wantErr{{"swarmgate.redirects", "to: empty"}}},
		{"redirect from with port", labels("swarmgate.redirects", "http://a.org:8080=>/b"), []wantErr{{"swarmgate.redirects", "no port in the source"}}},
		{"redirect to bad port", labels("swarmgate.redirects", "/a=>http://b.org:0/"), []wantErr{{"swarmgate.redirects", "1 to 65535"}}},
		{"redirect query", labels("swarmgate.redirects", "/a=>http://b.org/?x=1"), []wantErr{{"swarmgate.redirects", "no query or fragment"}}},
		{"redirect userinfo", labels("swarmgate.redirects", "/a=>http://u:p@b.org/"), []wantErr{{"swarmgate.redirects", "without user info"}}},
		{"redirect bad host", labels("swarmgate.redirects", "/a=>http://b_c.org/"), []wantErr{{"swarmgate.redirects", "not allowed in a host"}}},
		{"redirect wildcard host", labels("swarmgate.redirects", "http://*.a.org=>/b"), []wantErr{{"swarmgate.redirects", "no wildcard"}}},
		{"redirect bad path", labels("swarmgate.redirects", "/a/../b=>/b"), []wantErr{{"swarmgate.redirects", `".." segments`}}},
		{"redirect url bad path", labels("swarmgate.redirects", "http://a.org//x=>/b"), []wantErr{{"swarmgate.redirects", `"//"`}}},
		{"redirect to itself", labels("swarmgate.redirects", "/a/=>/a"), []wantErr{{"swarmgate.redirects", "redirects to itself"}}},
		// tcp
		{"tcp.port 80", only("swarmgate.tcp.port", "80", "swarmgate.port", "80"), []wantErr{{"swarmgate.tcp.port", "HTTP/HTTPS listeners"}}},
		{"tcp.port 443", only("swarmgate.tcp.port", "443", "swarmgate.port", "80"), []wantErr{{"swarmgate.tcp.port", "tcp.sni"}}},
		{"tcp.proxy-protocol bad", only("swarmgate.tcp.port", "5432", "swarmgate.port", "5432", "swarmgate.tcp.proxy-protocol", "v3"),
			[]wantErr{{"swarmgate.tcp.proxy-protocol", "off, v1 or v2"}}},
		{"tcp.proxy-protocol on HTTP", labels("swarmgate.tcp.proxy-protocol", "v1"),
			[]wantErr{{"swarmgate.tcp.proxy-protocol", "L4 routes only"}}},
		{"tcp.port range", only("swarmgate.tcp.port", "70000", "swarmgate.port", "80"), []wantErr{{"swarmgate.tcp.port", "1 to 65535"}}},
		{"tcp.port with hosts", labels("swarmgate.tcp.port", "2222"), []wantErr{{"swarmgate.tcp.port", "either TCP"}}},
		{"tcp.port with sni", only("swarmgate.tcp.port", "2222", "swarmgate.tcp.sni", "a.org", "swarmgate.port", "1"),
			[]wantErr{{"swarmgate.tcp.port", "either TCP"}}},
		{"tcp.port with HTTP keys", only("swarmgate.tcp.port", "2222", "swarmgate.port", "22", "swarmgate.path", "/a",
			"swarmgate.sticky", "s", "swarmgate.tls", "auto", "swarmgate.redirects", "/a=>/b", "swarmgate.health.path", "/h"),
			[]wantErr{
				{"swarmgate.path", "HTTP routes only"}, {"swarmgate.sticky", "HTTP routes only"},
				{"swarmgate.redirects", "HTTP routes only"}, {"swarmgate.health.path", "HTTP routes only"},
				{"swarmgate.tls", "HTTP routes only"},
			}},
		{"tcp.port with cookie balancing", only("swarmgate.tcp.port", "2222", "swarmgate.port", "22", "swarmgate.balancer", "cookie"),
			[]wantErr{{"swarmgate.balancer", "HTTP routes only"}}},
		{"tcp.sni with HTTP keys", only("swarmgate.tcp.sni", "a.org", "swarmgate.port", "22", "swarmgate.path.strip", "true",
			"swarmgate.tls.redirect", "true", "swarmgate.backend.tls", "on", "swarmgate.backend.h2c", "true", "swarmgate.health.interval", "5s"),
			[]wantErr{
				{"swarmgate.path.strip", "HTTP routes only"}, {"swarmgate.tls.redirect", "HTTP routes only"},
				{"swarmgate.backend.tls", "HTTP routes only"}, {"swarmgate.backend.h2c", "HTTP routes only"},
				{"swarmgate.health.interval", "HTTP routes only"},
			}},
		{"tcp.port with passthrough", only("swarmgate.tcp.port", "2222", "swarmgate.port", "22", "swarmgate.tls", "passthrough"),
			[]wantErr{{"swarmgate.tls", "forwards raw TCP"}}},
		{"tcp.sni with hosts", labels("swarmgate.tcp.sni", "b.org"), []wantErr{{"swarmgate.tcp.sni", "either TLS passthrough"}}},
		{"tcp.sni bad host", only("swarmgate.tcp.sni", "b.org:443", "swarmgate.port", "1"), []wantErr{{"swarmgate.tcp.sni", "no port"}}},
		{"tcp.sni with terminating tls", only("swarmgate.tcp.sni", "b.org", "swarmgate.port", "1", "swarmgate.tls", "auto"),
			[]wantErr{{"swarmgate.tls", "not terminated"}}},
		{"passthrough without names", only("swarmgate.tls", "passthrough", "swarmgate.port", "1", "swarmgate.default", "false",
			"swarmgate.routes.x.hosts", "x.org"),
			[]wantErr{{"swarmgate.default", "publishes nothing"}, {"swarmgate.tls", "publishes nothing"}}},
		{"passthrough on default backend", only("swarmgate.tls", "passthrough", "swarmgate.port", "1", "swarmgate.default", "true"),
			[]wantErr{{"swarmgate.tls", "cannot serve as the default backend"}}},
		{"passthrough alone publishes nothing", only("swarmgate.tls", "passthrough", "swarmgate.port", "1"),
			[]wantErr{{"swarmgate.hosts", "the service publishes nothing"}}},
		{"default=false alone publishes nothing", only("swarmgate.default", "false", "swarmgate.port", "1"),
			[]wantErr{{"swarmgate.hosts", "the service publishes nothing"}}},
		{"default with tcp.port", only("swarmgate.default", "true", "swarmgate.tcp.port", "99", "swarmgate.port", "1"),
			[]wantErr{{"swarmgate.tcp.port", "either TCP"}}},
		{"default not bool", labels("swarmgate.default", "always"), []wantErr{{"swarmgate.default", "true or false"}}},
		// structure
		{"nothing published", only("swarmgate.port", "80", "swarmgate.path", "/a"),
			[]wantErr{{"swarmgate.hosts", "publishes nothing"}}},
		{"unknown key with suggestion", labels("swarmgate.host", "a.org"), []wantErr{{"swarmgate.host", "did you mean swarmgate.hosts?"}}},
		{"unknown dotted key with suggestion", labels("swarmgate.tls.redirects", "true"),
			[]wantErr{{"swarmgate.tls.redirects", "did you mean swarmgate.tls.redirect?"}}},
		{"unknown key, transposition", labels("swarmgate.wieght", "5"), []wantErr{{"swarmgate.wieght", "did you mean swarmgate.weight?"}}},
		{"unknown key far from all", labels("swarmgate.frobnicate", "true"), []wantErr{{"swarmgate.frobnicate", "unknown label"}}},
		{"bare routes label", labels("swarmgate.routes", "x"), []wantErr{{"swarmgate.routes", "want swarmgate.routes.<name>.<key>"}}},
		{"named route without key", labels("swarmgate.routes.api", "x"), []wantErr{{"swarmgate.routes.api", "want swarmgate.routes.<name>.<key>"}}},
		{"named route empty name", labels("swarmgate.routes..hosts", "x"), []wantErr{{"swarmgate.routes..hosts", "want swarmgate.routes.<name>.<key>"}}},
		{"named route bad name", labels("swarmgate.routes.a$b.hosts", "x.org"), []wantErr{{"swarmgate.routes.a$b.hosts", "route name"}}},
		{"named route name too long", labels("swarmgate.routes."+strings.Repeat("r", 129)+".hosts", "x.org"),
			[]wantErr{{"swarmgate.routes." + strings.Repeat("r", 129) + ".hosts", "at most 128"}}},
		{"named route unknown key", labels("swarmgate.routes.api.prot", "80"),
			[]wantErr{{"swarmgate.routes.api.prot", "did you mean swarmgate.routes.api.port?"}}},
		{"named route publishes nothing, values still checked", labels("swarmgate.routes.api.port", "0"),
			[]wantErr{{"swarmgate.routes.api.port", "1 to 65535"}, {"swarmgate.routes.api.hosts", `route "api" publishes nothing`}}},
		{"named route port missing everywhere", only("swarmgate.routes.api.hosts", "a.org"),
			[]wantErr{{"swarmgate.routes.api.port", "required"}}},
		{"named route bad value", labels("swarmgate.routes.api.hosts", "a.org", "swarmgate.routes.api.weight", "x"),
			[]wantErr{{"swarmgate.routes.api.weight", "0 to 10000"}}},
		{"service-level key without default route", only("swarmgate.port", "80", "swarmgate.timeout", "5s",
			"swarmgate.routes.api.hosts", "a.org"),
			[]wantErr{{"swarmgate.timeout", "applies to no route"}}},
		{"bad service-level port is reported once", only("swarmgate.port", "x", "swarmgate.routes.api.hosts", "a.org"),
			[]wantErr{{"swarmgate.port", "1 to 65535"}}},
		{"every problem is reported", labels("swarmgate.port", "0", "swarmgate.weight", "-3", "swarmgate.hots", "x",
			"swarmgate.routes.b.hosts", "b.org:1"),
			[]wantErr{
				{"swarmgate.hots", "did you mean swarmgate.hosts?"}, {"swarmgate.port", "1 to 65535"},
				{"swarmgate.weight", "0 to 10000"}, {"swarmgate.routes.b.hosts", "no port"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRejected(t, tt.labels, tt.want)
		})
	}
}

// TestParseLabelsPure checks that parsing neither keeps nor changes its input.
func TestParseLabelsPure(t *testing.T) {
	in := labels("swarmgate.tls", "auto", "swarmgate.routes.b.hosts", "B.org", "swarmgate.routes.b.port", "1")
	keep := maps.Clone(in)
	first, errs := ParseLabels("web", in)
	if errs != nil {
		t.Fatal(errs)
	}
	if !maps.Equal(in, keep) {
		t.Errorf("input changed: %v", in)
	}
	first[0].Hosts[0] = "changed"
	second, _ := ParseLabels("web", in)
	if second[0].Hosts[0] != "app.example.org" {
		t.Errorf("results share state: %v", second[0].Hosts)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"hosts", "hosts", 0}, {"host", "hosts", 1}, {"wieght", "weight", 2},
		{"", "abc", 3}, {"kitten", "sitting", 3}, {strings.Repeat("a", 65), "a", 1 << 30},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func FuzzParseLabels(f *testing.F) {
	f.Add("swarmgate.hosts", "a.example.org", "swarmgate.port", "80", "swarmgate.redirects", "/a=>/b 302")
	f.Add("swarmgate.routes.x.hosts", "*.a.org", "swarmgate.routes.x.port", "1", "swarmgate.tls", "passthrough")
	f.Add("com.docker.lb.hosts", "a.org", "com.docker.lb.port", "8080", "com.docker.lb.redirects", "http://a.org,http://b.org;")
	f.Add("swarmgate.tcp.port", "2222", "swarmgate.port", "22", "swarmgate.hots", "x")
	f.Add("com.docker.lb.ssl_cert", "a.cert", "com.docker.lb.ssl_key", "a.key", "swarmgate.tcp.sni", "a.org")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		in := map[string]string{k1: v1, k2: v2, k3: v3}
		routes, errs := ParseLabels("svc", in)
		if len(errs) > 0 && routes != nil {
			t.Fatalf("routes %v with errors %v", routes, errs)
		}
		for _, e := range errs {
			if e.Service != "svc" || e.Label == "" || e.Reason == "" {
				t.Fatalf("error does not name service, label and reason: %#v", e)
			}
			if v, ok := in[e.Label]; ok && secretLabel(e.Label) {
				if strings.TrimSpace(v) != "" && strings.Contains(e.Value+e.Reason, strings.TrimSpace(v)) {
					t.Fatalf("error %v shows the value of %s", e, e.Label)
				}
			} else if (ok && e.Value != v) || (!ok && e.Value != "") {
				t.Fatalf("error value %q is not label %s's value", e.Value, e.Label)
			}
		}
		for _, r := range routes {
			if r.Service != "svc" || r.Port < 1 || r.Port > 65535 || r.Weight < 0 || r.Weight > maxWeight {
				t.Fatalf("invalid route %+v", r)
			}
			if len(r.Hosts) == 0 && len(r.SNI) == 0 && r.TCPPort == 0 && !r.Default {
				t.Fatalf("route publishes nothing: %+v", r)
			}
			if r.IsHTTP() && (r.Path == "" || r.Path[0] != '/') {
				t.Fatalf("HTTP route with path %q", r.Path)
			}
		}
	})
}
