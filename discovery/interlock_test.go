package discovery

import (
	"testing"

	"github.com/swarmgate/swarmgate/route"
)

// iRoute is the route that ilabels() yields, changed by mod.
func iRoute(mod func(*route.Route)) route.Route {
	return httpRoute(func(r *route.Route) {
		r.Hosts = []string{"demo.local"}
		if mod != nil {
			mod(r)
		}
	})
}

func TestInterlockLabels(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   []route.Route
	}{
		{"hosts and port", ilabels(), []route.Route{iRoute(nil)}},
		{"hosts with spaces, as Interlock's docs write them", ilabels("com.docker.lb.hosts", "example.com, Test.com"),
			[]route.Route{iRoute(func(r *route.Route) { r.Hosts = []string{"example.com", "test.com"} })}},
		{"network", ilabels("com.docker.lb.network", "app-network-a"),
			[]route.Route{iRoute(func(r *route.Route) { r.Network = "app-network-a" })}},
		{"context_root", ilabels("com.docker.lb.context_root", "/app"),
			[]route.Route{iRoute(func(r *route.Route) { r.Path = "/app" })}},
		{"context_root_rewrite strips the prefix", ilabels("com.docker.lb.context_root", "/app/", "com.docker.lb.context_root_rewrite", "true"),
			[]route.Route{iRoute(func(r *route.Route) { r.Path, r.Strip = "/app", true })}},
		{"ssl_cert and ssl_key name the certificate", ilabels("com.docker.lb.ssl_cert", "demo_app.example.org.cert",
			"com.docker.lb.ssl_key", "demo_app.example.org.key"),
			[]route.Route{iRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = "demo_app.example.org", true })}},
		{"ssl_cert .pem", ilabels("com.docker.lb.ssl_cert", "site.pem", "com.docker.lb.ssl_key", "site-key"),
			[]route.Route{iRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = "site", true })}},
		{"ssl_cert without extension", ilabels("com.docker.lb.ssl_cert", "site", "com.docker.lb.ssl_key", "site.key"),
			[]route.Route{iRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = "site", true })}},
		{"ssl_passthrough means SNI routing", ilabels("com.docker.lb.ssl_passthrough", "true"),
			[]route.Route{l4Route(func(r *route.Route) { r.SNI, r.TLS = []string{"demo.local"}, route.TLSPassthrough })}},
		{"ssl_passthrough false", ilabels("com.docker.lb.ssl_passthrough", "false"), []route.Route{iRoute(nil)}},
		{"ssl_backend without verification, Interlock's default", ilabels("com.docker.lb.ssl_backend", "true"),
			[]route.Route{iRoute(func(r *route.Route) { r.BackendTLS = route.BackendTLSInsecure })}},
		{"ssl_backend verify none", ilabels("com.docker.lb.ssl_backend", "true", "com.docker.lb.ssl_backend_tls_verify", "none"),
			[]route.Route{iRoute(func(r *route.Route) { r.BackendTLS = route.BackendTLSInsecure })}},
		{"ssl_backend verify required", ilabels("com.docker.lb.ssl_backend", "true", "com.docker.lb.ssl_backend_tls_verify", "Required"),
			[]route.Route{iRoute(func(r *route.Route) { r.BackendTLS = route.BackendTLSOn })}},
		{"ssl_backend false", ilabels("com.docker.lb.ssl_backend", "false", "com.docker.lb.ssl_backend_tls_verify", "required"),
			[]route.Route{iRoute(nil)}},
		{"sticky_session_cookie", ilabels("com.docker.lb.sticky_session_cookie", "session"),
			[]route.Route{iRoute(func(r *route.Route) { r.Sticky, r.Balancer = "session", route.BalancerCookie })}},
		{"ip_hash", ilabels("com.docker.lb.ip_hash", "true"),
			[]route.Route{iRoute(func(r *route.Route) { r.Balancer = route.BalancerIPHash })}},
		{"ip_hash false", ilabels("com.docker.lb.ip_hash", "false"), []route.Route{iRoute(nil)}},
		{"redirects, 302 like Interlock", ilabels("com.docker.lb.hosts", "old.local,new.local",
			"com.docker.lb.redirects", "http://old.local,http://new.local"),
			[]route.Route{iRoute(func(r *route.Route) {
				r.Hosts = []string{"old.local", "new.local"}
				r.Redirects = []route.Redirect{{From: "http://old.local", To: "http://new.local", Code: 302}}
			})}},
		{"several redirects with the trailing separator of the docs",
			ilabels("com.docker.lb.redirects", "http://old.example.com,http://new.example.com; https://a.example.com/x, https://b.example.com/y;"),
			[]route.Route{iRoute(func(r *route.Route) {
				r.Redirects = []route.Redirect{
					{From: "http://old.example.com", To: "http://new.example.com", Code: 302},
					{From: "https://a.example.com/x", To: "https://b.example.com/y", Code: 302},
				}
			})}},
		{"websocket_endpoints are accepted and change nothing", ilabels("com.docker.lb.websocket_endpoints", "/ws,/foo"),
			[]route.Route{iRoute(nil)}},
		{"service_cluster", ilabels("com.docker.lb.service_cluster", "us-east"),
			[]route.Route{iRoute(func(r *route.Route) { r.Cluster = "us-east" })}},
		{"backend_mode vip", ilabels("com.docker.lb.backend_mode", "vip"),
			[]route.Route{iRoute(func(r *route.Route) { r.Backend = route.BackendVIP })}},
		{"backend_mode task", ilabels("com.docker.lb.backend_mode", "task"), []route.Route{iRoute(nil)}},
		{"backend_mode default", ilabels("com.docker.lb.backend_mode", "default"), []route.Route{iRoute(nil)}},
		{"default_backend", map[string]string{"com.docker.lb.default_backend": "true", "com.docker.lb.port": "8080"},
			[]route.Route{httpRoute(func(r *route.Route) { r.Hosts, r.Default = nil, true })}},
		// Precedence: swarmgate.* wins key by key; the rest still applies.
		{"swarmgate wins where both are set", ilabels(
			"swarmgate.hosts", "app.example.org", "swarmgate.port", "9000", "swarmgate.path", "/new",
			"com.docker.lb.context_root", "/old", "com.docker.lb.network", "inet",
			"swarmgate.tls", "auto", "com.docker.lb.ssl_cert", "x.cert", "com.docker.lb.ssl_key", "x.key",
			"swarmgate.balancer", "least-conn", "com.docker.lb.ip_hash", "true",
			"swarmgate.backend", "task", "com.docker.lb.backend_mode", "vip"),
			[]route.Route{httpRoute(func(r *route.Route) {
				r.Port, r.Path, r.Network, r.TLS, r.TLSRedirect, r.Balancer = 9000, "/new", "inet", route.TLSAuto, true, route.BalancerLeastConn
			})}},
		{"swarmgate tls wins over ssl_passthrough", ilabels("com.docker.lb.ssl_passthrough", "true", "swarmgate.tls", "off"),
			[]route.Route{iRoute(nil)}},
		{"swarmgate labels add to an Interlock route", ilabels("swarmgate.weight", "10", "swarmgate.timeout", "5m"),
			[]route.Route{iRoute(func(r *route.Route) { r.Weight, r.Timeout = 10, 300e9 })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRoutes(t, tt.labels, tt.want)
		})
	}
}

func TestInterlockErrors(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   []wantErr
	}{
		{"bad host", ilabels("com.docker.lb.hosts", "demo.local:80"), []wantErr{{"com.docker.lb.hosts", "no port"}}},
		{"bad port", ilabels("com.docker.lb.port", "http"), []wantErr{{"com.docker.lb.port", "1 to 65535"}}},
		{"missing port names the Interlock label", ilabels("com.docker.lb.port", "<unset>"),
			[]wantErr{{"com.docker.lb.port", "required"}}},
		{"missing hosts names the Interlock label", map[string]string{"com.docker.lb.port": "80"},
			[]wantErr{{"com.docker.lb.hosts", "the service publishes nothing: set com.docker.lb.hosts"}}},
		{"bad network", ilabels("com.docker.lb.network", "a b"), []wantErr{{"com.docker.lb.network", "network name"}}},
		{"bad context_root", ilabels("com.docker.lb.context_root", "app"), []wantErr{{"com.docker.lb.context_root", "starting with /"}}},
		{"strip without context_root names the Interlock label", ilabels("com.docker.lb.context_root_rewrite", "true"),
			[]wantErr{{"com.docker.lb.context_root_rewrite", "no prefix to strip: com.docker.lb.context_root is /"}}},
		{"bad context_root_rewrite", ilabels("com.docker.lb.context_root", "/app", "com.docker.lb.context_root_rewrite", "on"),
			[]wantErr{{"com.docker.lb.context_root_rewrite", "true or false"}}},
		{"ssl_cert without ssl_key", ilabels("com.docker.lb.ssl_cert", "a.cert"), []wantErr{{"com.docker.lb.ssl_cert", "needs com.docker.lb.ssl_key"}}},
		{"ssl_key without ssl_cert", ilabels("com.docker.lb.ssl_key", "a.key"), []wantErr{{"com.docker.lb.ssl_key", "needs com.docker.lb.ssl_cert"}}},
		{"bad ssl_cert", ilabels("com.docker.lb.ssl_cert", "../a.cert", "com.docker.lb.ssl_key", "a.key"),
			[]wantErr{{"com.docker.lb.ssl_cert", "Docker secret name"}}},
		{"bad ssl_key", ilabels("com.docker.lb.ssl_cert", "a.cert", "com.docker.lb.ssl_key", "a/key"),
			[]wantErr{{"com.docker.lb.ssl_key", "Docker secret name"}}},
		{"ssl_passthrough not bool", ilabels("com.docker.lb.ssl_passthrough", "yes"), []wantErr{{"com.docker.lb.ssl_passthrough", "true or false"}}},
		{"ssl_passthrough with ssl_cert", ilabels("com.docker.lb.ssl_passthrough", "true", "com.docker.lb.ssl_cert", "a.cert",
			"com.docker.lb.ssl_key", "a.key"), []wantErr{{"com.docker.lb.ssl_passthrough", "contradicts com.docker.lb.ssl_cert"}}},
		{"ssl_passthrough with context_root", ilabels("com.docker.lb.ssl_passthrough", "true", "com.docker.lb.context_root", "/a"),
			[]wantErr{{"com.docker.lb.context_root", "HTTP routes only"}}},
		{"ssl_backend not bool", ilabels("com.docker.lb.ssl_backend", "tls"), []wantErr{{"com.docker.lb.ssl_backend", "true or false"}}},
		{"bad ssl_backend_tls_verify", ilabels("com.docker.lb.ssl_backend", "true", "com.docker.lb.ssl_backend_tls_verify", "optional"),
			[]wantErr{{"com.docker.lb.ssl_backend_tls_verify", "none or required"}}},
		{"bad sticky_session_cookie", ilabels("com.docker.lb.sticky_session_cookie", "a=b"),
			[]wantErr{{"com.docker.lb.sticky_session_cookie", "RFC 6265"}}},
		{"sticky with vip", ilabels("com.docker.lb.sticky_session_cookie", "s", "com.docker.lb.backend_mode", "vip"),
			[]wantErr{{"com.docker.lb.sticky_session_cookie", "com.docker.lb.backend_mode=task"}}},
		{"ip_hash not bool", ilabels("com.docker.lb.ip_hash", "1.2.3.4"), []wantErr{{"com.docker.lb.ip_hash", "true or false"}}},
		{"ip_hash with sticky cookie", ilabels("com.docker.lb.ip_hash", "true", "com.docker.lb.sticky_session_cookie", "s"),
			[]wantErr{{"com.docker.lb.ip_hash", "choose one kind of affinity"}}},
		{"redirect not a pair", ilabels("com.docker.lb.redirects", "http://old.local"),
			[]wantErr{{"com.docker.lb.redirects", "want <source>,<target>"}}},
		{"redirect three parts", ilabels("com.docker.lb.redirects", "http://a.local,http://b.local,http://c.local"),
			[]wantErr{{"com.docker.lb.redirects", "want <source>,<target>"}}},
		{"redirect in swarmgate syntax", ilabels("com.docker.lb.redirects", "/a=>/b,/c"),
			[]wantErr{{"com.docker.lb.redirects", "want <source>,<target>"}}},
		{"redirect empty rule", ilabels("com.docker.lb.redirects", ";http://a.local,http://b.local"),
			[]wantErr{{"com.docker.lb.redirects", "rule 1: empty rule"}}},
		{"redirect bad source", ilabels("com.docker.lb.redirects", "old.local,http://new.local"),
			[]wantErr{{"com.docker.lb.redirects", "from: want an absolute http(s) URL"}}},
		{"bad service_cluster", ilabels("com.docker.lb.service_cluster", "us east"), []wantErr{{"com.docker.lb.service_cluster", "cluster name"}}},
		{"bad backend_mode", ilabels("com.docker.lb.backend_mode", "dnsrr"), []wantErr{{"com.docker.lb.backend_mode", "task, vip or default"}}},
		{"bad default_backend", ilabels("com.docker.lb.default_backend", "yes please"), []wantErr{{"com.docker.lb.default_backend", "true or false"}}},
		{"unknown Interlock label with suggestion", ilabels("com.docker.lb.host", "a.local"),
			[]wantErr{{"com.docker.lb.host", "did you mean com.docker.lb.hosts?"}}},
		{"unknown Interlock label", ilabels("com.docker.lb.canary_weight", "5"),
			[]wantErr{{"com.docker.lb.canary_weight", "unknown Interlock label"}}},
		{"unknown Interlock label alone", map[string]string{"com.docker.lb.foo": "x"},
			[]wantErr{{"com.docker.lb.foo", "unknown Interlock label"}}},
		{"swarmgate value errors name the swarmgate label", ilabels("swarmgate.port", "x"),
			[]wantErr{{"swarmgate.port", "1 to 65535"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRejected(t, tt.labels, tt.want)
		})
	}
}

func TestCertNameFromSecret(t *testing.T) {
	for in, want := range map[string]string{
		"app.example.org.cert": "app.example.org", "a.crt": "a", "a.pem": "a", "a": "a", ".cert": ".cert", "a.key": "a.key",
	} {
		if got := certNameFromSecret(in); got != want {
			t.Errorf("certNameFromSecret(%q) = %q, want %q", in, got, want)
		}
	}
}
