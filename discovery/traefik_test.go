package discovery

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

const withTraefik = DefaultDialects | DialectTraefik

// tlabels is the minimal Traefik service (router web: Host(`app.example.org`)
// -> service web on :8080) plus kv pairs; "<unset>" removes a label.
func tlabels(kv ...string) map[string]string {
	return withPairs(map[string]string{
		"traefik.enable":                                     "true",
		"traefik.http.routers.web.rule":                      "Host(`app.example.org`)",
		"traefik.http.services.web.loadbalancer.server.port": "8080",
	}, kv...)
}

// tRoute is the route that tlabels() yields, changed by mod.
func tRoute(mod func(*route.Route)) route.Route {
	return httpRoute(func(r *route.Route) {
		r.Name = "web"
		if mod != nil {
			mod(r)
		}
	})
}

// tBcrypt is a bcrypt hash (htpasswd -nbB alice s3cret).
const tBcrypt = "$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW"

func tpol(mod func(*route.Policy)) *route.Policy {
	p := &route.Policy{}
	mod(p)
	return p
}

func TestTraefikLabels(t *testing.T) {
	https := []string{
		"traefik.http.routers.web.entrypoints", "websecure",
		"traefik.http.routers.web.tls.certresolver", "le",
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   []route.Route
	}{
		{"router and service", tlabels(), []route.Route{tRoute(nil)}},
		{"the only service is the router's", tlabels("traefik.http.services.web.loadbalancer.server.port", "<unset>",
			"traefik.http.services.app.loadbalancer.server.port", "9000"),
			[]route.Route{tRoute(func(r *route.Route) { r.Port = 9000 })}},
		{"the named service", tlabels("traefik.http.services.api.loadbalancer.server.port", "9000",
			"traefik.http.routers.web.service", "api@swarm"),
			[]route.Route{tRoute(func(r *route.Route) { r.Port = 9000 })}},
		{"keys in any case", tlabels("traefik.http.services.web.loadbalancer.server.port", "<unset>",
			"traefik.http.services.web.loadBalancer.server.port", "8080", "traefik.http.routers.web.Priority", "5"),
			[]route.Route{tRoute(func(r *route.Route) { r.Priority = 5 })}},
		{"several hosts", tlabels("traefik.http.routers.web.rule", "Host(`b.example.org`) || Host(`a.example.org`)"),
			[]route.Route{tRoute(func(r *route.Route) { r.Hosts = []string{"a.example.org", "b.example.org"} })}},
		{"host and path prefix", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && PathPrefix(`/api/`)"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path = "/api" })}},
		{"a Path is an exact route", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && Path(`/health`)"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path, r.Exact = "/health", true })}},
		{"one route per path", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && (PathPrefix(`/a`) || PathPrefix(`/b`))"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path = "/a" }), tRoute(func(r *route.Route) { r.Name, r.Path = "web-2", "/b" })}},
		{"no Host: the default backend", tlabels("traefik.http.routers.web.rule", "PathPrefix(`/`)"),
			[]route.Route{tRoute(func(r *route.Route) { r.Hosts, r.Default = nil, true })}},
		{"priority", tlabels("traefik.http.routers.web.priority", "42"),
			[]route.Route{tRoute(func(r *route.Route) { r.Priority = 42 })}},
		{"entrypoint web", tlabels("traefik.http.routers.web.entrypoints", "web"), []route.Route{tRoute(nil)}},
		{"certresolver: ACME on websecure, HTTP redirected", tlabels(https...),
			[]route.Route{tRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true })}},
		{"tls and certresolver", tlabels("traefik.http.routers.web.tls", "true", "traefik.http.routers.web.tls.certresolver", "le"),
			[]route.Route{tRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true })}},
		{"tls=true with the certificate named by swarmgate", tlabels("traefik.http.routers.web.tls", "true",
			"swarmgate.routes.web.tls", "site"),
			[]route.Route{tRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = "site", true })}},
		{"tls.domains among the hosts", tlabels(append(https, "traefik.http.routers.web.tls.domains[0].main", "app.example.org")...),
			[]route.Route{tRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true })}},
		{"HTTP router redirecting to the HTTPS router: one route", tlabels(append(https,
			"traefik.http.routers.web-http.rule", "Host(`app.example.org`)",
			"traefik.http.routers.web-http.entrypoints", "web",
			"traefik.http.routers.web-http.middlewares", "to-https",
			"traefik.http.middlewares.to-https.redirectscheme.scheme", "https",
			"traefik.http.middlewares.to-https.redirectscheme.permanent", "true")...),
			[]route.Route{tRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true })}},
		{"HTTP and HTTPS routers without redirect: served on both", tlabels(append(https,
			"traefik.http.routers.plain.rule", "Host(`app.example.org`)",
			"traefik.http.routers.plain.entrypoints", "web")...),
			[]route.Route{tRoute(func(r *route.Route) { r.TLS = route.TLSAuto })}},
		{"ruleSyntax", tlabels("traefik.http.routers.web.ruleSyntax", "v2"), []route.Route{tRoute(nil)}},
		{"redirectscheme to port 443", tlabels(append(https,
			"traefik.http.routers.web-http.rule", "Host(`app.example.org`)",
			"traefik.http.routers.web-http.middlewares", "to-https",
			"traefik.http.middlewares.to-https.redirectscheme.scheme", "https",
			"traefik.http.middlewares.to-https.redirectscheme.port", "443")...),
			[]route.Route{tRoute(func(r *route.Route) { r.TLS, r.TLSRedirect = route.TLSAuto, true })}},
		{"server scheme https", tlabels("traefik.http.services.web.loadbalancer.server.scheme", "https"),
			[]route.Route{tRoute(func(r *route.Route) { r.BackendTLS = route.BackendTLSOn })}},
		{"server scheme h2c", tlabels("traefik.http.services.web.loadbalancer.server.scheme", "h2c"),
			[]route.Route{tRoute(func(r *route.Route) { r.H2C = true })}},
		{"sticky cookie named", tlabels("traefik.http.services.web.loadbalancer.sticky.cookie", "true",
			"traefik.http.services.web.loadbalancer.sticky.cookie.name", "sid",
			"traefik.http.services.web.loadbalancer.sticky.cookie.httponly", "true",
			"traefik.http.services.web.loadbalancer.sticky.cookie.secure", "true"),
			[]route.Route{tRoute(func(r *route.Route) { r.Sticky, r.Balancer = "sid", route.BalancerCookie })}},
		{"sticky cookie samesite lax", tlabels("traefik.http.services.web.loadbalancer.sticky.cookie.samesite", "Lax"),
			[]route.Route{tRoute(func(r *route.Route) { r.Sticky, r.Balancer = traefikCookieName("web"), route.BalancerCookie })}},
		{"sticky cookie unnamed", tlabels("traefik.http.services.web.loadbalancer.sticky.cookie", "true"),
			[]route.Route{tRoute(func(r *route.Route) { r.Sticky, r.Balancer = traefikCookieName("web"), route.BalancerCookie })}},
		{"sticky cookie false", tlabels("traefik.http.services.web.loadbalancer.sticky.cookie", "false"), []route.Route{tRoute(nil)}},
		{"health check", tlabels("traefik.http.services.web.loadbalancer.healthcheck.path", "/healthz",
			"traefik.http.services.web.loadbalancer.healthcheck.interval", "5s"),
			[]route.Route{tRoute(func(r *route.Route) { r.HealthPath, r.HealthInterval = "/healthz", 5*time.Second })}},
		{"health check interval in bare seconds", tlabels("traefik.http.services.web.loadbalancer.healthcheck.path", "/healthz",
			"traefik.http.services.web.loadbalancer.healthcheck.interval", "30"),
			[]route.Route{tRoute(func(r *route.Route) { r.HealthPath, r.HealthInterval = "/healthz", 30*time.Second })}},
		{"health check default interval", tlabels("traefik.http.services.web.loadbalancer.healthcheck.path", "/healthz"),
			[]route.Route{tRoute(func(r *route.Route) { r.HealthPath, r.HealthInterval = "/healthz", route.DefaultHealthInterval })}},
		{"passhostheader", tlabels("traefik.http.services.web.loadbalancer.passhostheader", "true"), []route.Route{tRoute(nil)}},
		{"swarm network", tlabels("traefik.swarm.network", "proxy"), []route.Route{tRoute(func(r *route.Route) { r.Network = "proxy" })}},
		{"docker network (v2)", tlabels("traefik.docker.network", "proxy"), []route.Route{tRoute(func(r *route.Route) { r.Network = "proxy" })}},
		{"lbswarm: the VIP", tlabels("traefik.docker.lbswarm", "true"), []route.Route{tRoute(func(r *route.Route) { r.Backend = route.BackendVIP })}},
		{"stripprefix of the route's path", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && PathPrefix(`/api`)",
			"traefik.http.routers.web.middlewares", "strip",
			"traefik.http.middlewares.strip.stripprefix.prefixes", "/api"),
			[]route.Route{tRoute(func(r *route.Route) { r.Path, r.Strip = "/api", true })}},
		{"basicauth from a secret file", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.usersfile", "/run/secrets/htpasswd",
			"traefik.http.middlewares.auth.basicauth.realm", "staff",
			"traefik.http.middlewares.auth.basicauth.removeheader", "true"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) { p.BasicAuth, p.BasicRealm = "htpasswd", "staff" })
			})}},
		// Traefik's docs' users, whose "$$" docker stack deploy has made "$".
		{"basicauth inline users", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/, test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0",
			"traefik.http.middlewares.auth.basicauth.realm", "staff"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) {
					p.BasicRealm = "staff"
					p.BasicUsers = []route.BasicUser{{Name: "test", Hash: "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"}, {Name: "test2", Hash: "$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0"}}
				})
			})}},
		{"basicauth inline users and a usersfile: both, as in Traefik", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "u:"+tBcrypt,
			"traefik.http.middlewares.auth.basicauth.usersfile", "/run/secrets/htpasswd"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) {
					p.BasicAuth, p.BasicUsers = "htpasswd", []route.BasicUser{{Name: "u", Hash: tBcrypt}}
				})
			})}},
		{"basicauth inline users with the file named by swarmgate", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "u:"+tBcrypt,
			"swarmgate.routes.web.auth.basic", "htpasswd"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) {
					p.BasicAuth, p.BasicUsers = "htpasswd", []route.BasicUser{{Name: "u", Hash: tBcrypt}}
				})
			})}},
		{"basicauth inline users replaced by swarmgate's", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "u:"+tBcrypt,
			"swarmgate.routes.web.auth.users", "v:"+tBcrypt),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) { p.BasicUsers = []route.BasicUser{{Name: "v", Hash: tBcrypt}} })
			})}},
		{"custom headers", tlabels("traefik.http.routers.web.middlewares", "hdr",
			"traefik.http.middlewares.hdr.headers.customrequestheaders.X-Script-Name", "test",
			"traefik.http.middlewares.hdr.headers.customrequestheaders.X-Drop", "",
			"traefik.http.middlewares.hdr.headers.customresponseheaders.X-Custom-Response-Header", "value"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) {
					p.RequestHeaders = []route.Header{{Name: "X-Drop"}, {Name: "X-Script-Name", Value: "test"}}
					p.ResponseHeaders = []route.Header{{Name: "X-Custom-Response-Header", Value: "value"}}
				})
			})}},
		{"headers sts", tlabels(append(https, "traefik.http.routers.web.middlewares", "sec",
			"traefik.http.middlewares.sec.headers.stsseconds", "31536000",
			"traefik.http.middlewares.sec.headers.stsincludesubdomains", "true",
			"traefik.http.middlewares.sec.headers.stspreload", "true")...),
			[]route.Route{tRoute(func(r *route.Route) {
				r.TLS, r.TLSRedirect, r.HSTS = route.TLSAuto, true, "max-age=31536000; includeSubDomains; preload"
			})}},
		{"headers CORS", tlabels("traefik.http.routers.web.middlewares", "cors",
			"traefik.http.middlewares.cors.headers.accesscontrolalloworiginlist", "https://a.example.org",
			"traefik.http.middlewares.cors.headers.accesscontrolallowmethods", "GET,PUT",
			"traefik.http.middlewares.cors.headers.accessControlAllowHeaders", "X-Token",
			"traefik.http.middlewares.cors.headers.accessControlAllowCredentials", "true",
			"traefik.http.middlewares.cors.headers.accesscontrolmaxage", "100"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) {
					p.CORS = route.CORS{Origins: []string{"https://a.example.org"}, Methods: []string{"GET", "PUT"},
						Headers: []string{"X-Token"}, Credentials: true, MaxAge: 100 * time.Second}
				})
			})}},
		{"ratelimit average and burst", tlabels("traefik.http.routers.web.middlewares", "rl",
			"traefik.http.middlewares.rl.ratelimit.average", "100",
			"traefik.http.middlewares.rl.ratelimit.burst", "50"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) { p.RateLimit = route.Rate{N: 100, Per: time.Second, Burst: 50} })
			})}},
		{"ratelimit per minute, Traefik's burst of 1", tlabels("traefik.http.routers.web.middlewares", "rl",
			"traefik.http.middlewares.rl.ratelimit.average", "6",
			"traefik.http.middlewares.rl.ratelimit.period", "1m"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) { p.RateLimit = route.Rate{N: 6, Per: time.Minute, Burst: 1} })
			})}},
		{"ratelimit average 0 is none", tlabels("traefik.http.routers.web.middlewares", "rl",
			"traefik.http.middlewares.rl.ratelimit.average", "0",
			"traefik.http.middlewares.rl.ratelimit.burst", "5"), []route.Route{tRoute(nil)}},
		{"ipallowlist", tlabels("traefik.http.routers.web.middlewares", "ips",
			"traefik.http.middlewares.ips.ipallowlist.sourcerange", "127.0.0.1/32, 192.168.1.7"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) {
					p.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("192.168.1.7/32")}
				})
			})}},
		{"ipwhitelist (v2)", tlabels("traefik.http.routers.web.middlewares", "ips",
			"traefik.http.middlewares.ips.ipwhitelist.sourcerange", "10.0.0.0/8"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) { p.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
			})}},
		{"compress", tlabels("traefik.http.routers.web.middlewares", "gz", "traefik.http.middlewares.gz.compress", "true"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) { p.Compress = []string{"zstd", "br", "gzip"} })
			})}},
		{"chain", tlabels("traefik.http.routers.web.middlewares", "secured@swarm",
			"traefik.http.middlewares.secured.chain.middlewares", "gz, ips",
			"traefik.http.middlewares.gz.compress", "true",
			"traefik.http.middlewares.ips.ipallowlist.sourcerange", "10.0.0.0/8"),
			[]route.Route{tRoute(func(r *route.Route) {
				r.Policy = tpol(func(p *route.Policy) {
					p.Compress = []string{"zstd", "br", "gzip"}
					p.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
				})
			})}},
		{"TCP passthrough by SNI", only("traefik.enable", "true",
			"traefik.tcp.routers.web.rule", "HostSNI(`db.example.org`) || HostSNI(`db2.example.org`)",
			"traefik.tcp.routers.web.entrypoints", "websecure",
			"traefik.tcp.routers.web.tls.passthrough", "true",
			"traefik.tcp.services.web.loadbalancer.server.port", "5432",
			"traefik.tcp.services.web.loadbalancer.proxyprotocol.version", "2"),
			[]route.Route{l4Route(func(r *route.Route) {
				r.Name, r.Port, r.SNI, r.TLS, r.ProxyProtocol = "web", 5432, []string{"db.example.org", "db2.example.org"}, route.TLSPassthrough, 2
			})}},
		{"TCP HostSNI(`*`) on the port swarmgate names", only("traefik.enable", "true",
			"traefik.tcp.routers.web.rule", "HostSNI(`*`)",
			"traefik.tcp.routers.web.entrypoints", "postgres",
			"traefik.tcp.services.web.loadbalancer.server.port", "5432",
			"swarmgate.routes.web.tcp.port", "15432"),
			[]route.Route{l4Route(func(r *route.Route) { r.Name, r.Port, r.TCPPort = "web", 5432, 15432 })}},
		// swarmgate wins
		{"swarmgate.routes.<router>.<key> wins", tlabels("swarmgate.routes.web.port", "9999", "swarmgate.routes.web.hosts", "other.example.org"),
			[]route.Route{tRoute(func(r *route.Route) { r.Port, r.Hosts = 9999, []string{"other.example.org"} })}},
		{"service-level swarmgate.port wins", tlabels("swarmgate.port", "9999"),
			[]route.Route{tRoute(func(r *route.Route) { r.Port = 9999 })}},
		{"service-level swarmgate.network wins", tlabels("traefik.swarm.network", "proxy", "swarmgate.network", "edge"),
			[]route.Route{tRoute(func(r *route.Route) { r.Network = "edge" })}},
		{"swarmgate and Traefik routes side by side", tlabels("swarmgate.hosts", "sg.example.org", "swarmgate.port", "8080"),
			[]route.Route{tRoute(func(r *route.Route) { r.Name, r.Hosts = "", []string{"sg.example.org"} }), tRoute(nil)}},
		// not read
		{"traefik.enable=false", tlabels("traefik.enable", "false", "swarmgate.hosts", "app.example.org", "swarmgate.port", "8080"),
			[]route.Route{httpRoute(nil)}},
		{"no traefik.enable (exposedByDefault is false)", tlabels("traefik.enable", "<unset>", "swarmgate.hosts", "app.example.org", "swarmgate.port", "8080"),
			[]route.Route{httpRoute(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseLabelsFor("web", tt.labels, withTraefik)
			for _, e := range errs {
				t.Errorf("unexpected error: %v", e)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("routes:\n got %+v\nwant %+v", got, tt.want)
				for i := range got {
					if got[i].Policy != nil {
						t.Logf("got policy %d: %+v", i, *got[i].Policy)
					}
				}
			}
		})
	}
}

func TestTraefikLabelsNeedTheDialect(t *testing.T) {
	for _, d := range []Dialects{0, DefaultDialects} {
		if got, errs := ParseLabelsFor("web", tlabels(), d); got != nil || errs != nil {
			t.Errorf("dialects %v: got %+v, %v; want Traefik labels ignored", d, got, errs)
		}
	}
	// Without the swarmgate dialect, swarmgate.* labels are not read either.
	got, errs := ParseLabelsFor("web", tlabels("swarmgate.port", "bad"), DialectTraefik)
	if len(errs) != 0 || len(got) != 1 || got[0].Port != 8080 {
		t.Errorf("traefik only: got %+v, %v", got, errs)
	}
}

func TestTraefikLabelsRejected(t *testing.T) {
	https := []string{"traefik.http.routers.web.entrypoints", "websecure", "traefik.http.routers.web.tls.certresolver", "le"}
	const rule = "traefik.http.routers.web.rule"
	tests := []struct {
		name   string
		labels map[string]string
		want   []wantErr
	}{
		{"enable not a bool", tlabels("traefik.enable", "yes"), []wantErr{{"traefik.enable", "want true or false"}}},
		{"no router", only("traefik.enable", "true", "traefik.http.services.web.loadbalancer.server.port", "80"),
			[]wantErr{{"traefik.enable", "defines no router"}}},
		{"no rule", tlabels(rule, "<unset>", "traefik.http.routers.web.entrypoints", "web"), []wantErr{{rule, "required: swarmgate has no defaultRule"}}},
		{"bad rule", tlabels(rule, "Host(`a.org`"), []wantErr{{rule, "at column 13"}}},
		{"unrepresentable rule", tlabels(rule, "Host(`a.org`) && Method(`POST`)"), []wantErr{{rule, "Method(`POST`) is not representable"}}},
		{"bad host in the rule", tlabels(rule, "Host(`a_b.org`)"), []wantErr{{rule, `'_' is not allowed`}}},
		{"v2 path variable", tlabels(rule, "Host(`app.example.org`) && PathPrefix(`/users/{id:[0-9]+}`)"),
			[]wantErr{{rule, "a {name} or {name:regexp} in a path is a regular expression in Traefik v2"}}},
		{"no port (Swarm tells Traefik none either)", tlabels("traefik.http.services.web.loadbalancer.server.port", "<unset>"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.server.port", "required"}}},
		{"bad port", tlabels("traefik.http.services.web.loadbalancer.server.port", "http"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.server.port", "1 to 65535"}}},
		{"bad priority", tlabels("traefik.http.routers.web.priority", "high"), []wantErr{{"traefik.http.routers.web.priority", "want an integer"}}},
		{"unknown entrypoint", tlabels("traefik.http.routers.web.entrypoints", "traefik"),
			[]wantErr{{"traefik.http.routers.web.entrypoints", `entrypoint "traefik"`}}},
		{"tls on web", tlabels("traefik.http.routers.web.entrypoints", "web", "traefik.http.routers.web.tls", "true"),
			[]wantErr{{"traefik.http.routers.web.entrypoints", "TLS on entrypoint web"}}},
		{"tls=true without certresolver", tlabels("traefik.http.routers.web.tls", "true"),
			[]wantErr{{"traefik.http.routers.web.tls", "swarmgate.routes.web.tls=NAME"}}},
		{"websecure without tls options", tlabels("traefik.http.routers.web.entrypoints", "websecure"),
			[]wantErr{{"traefik.http.routers.web.entrypoints", "static configuration of entrypoint websecure"}}},
		{"tls options", tlabels(append(https, "traefik.http.routers.web.tls.options", "modern@file")...),
			[]wantErr{{"traefik.http.routers.web.tls.options", "TLS options"}}},
		{"tls domain not a host", tlabels(append(https, "traefik.http.routers.web.tls.domains[0].sans", "*.example.org")...),
			[]wantErr{{"traefik.http.routers.web.tls.domains[0].sans", "not a host of the rule"}}},
		{"unknown router option", tlabels("traefik.http.routers.web.tls.passthrough", "true"),
			[]wantErr{{"traefik.http.routers.web.tls.passthrough", `router option "tls.passthrough"`}}},
		{"service of another provider", tlabels("traefik.http.routers.web.service", "api@internal"),
			[]wantErr{{"traefik.http.routers.web.service", "Traefik's internal provider"}}},
		{"service not defined here", tlabels("traefik.http.routers.web.service", "other"),
			[]wantErr{{"traefik.http.routers.web.service", `service "other" is not defined by this service's labels`}}},
		{"two services, none named", tlabels("traefik.http.services.api.loadbalancer.server.port", "9000"),
			[]wantErr{{"traefik.http.routers.web.service", "define 2 (api, web)"}}},
		{"unknown service option", tlabels("traefik.http.services.web.loadbalancer.healthcheck.timeout", "3s"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.healthcheck.timeout", `service option "loadbalancer.healthcheck.timeout"`}}},
		{"bad server scheme", tlabels("traefik.http.services.web.loadbalancer.server.scheme", "ftp"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.server.scheme", "want http, https or h2c"}}},
		{"sticky samesite strict", tlabels("traefik.http.services.web.loadbalancer.sticky.cookie.samesite", "strict"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.sticky.cookie.samesite", "SameSite=Lax"}}},
		{"passhostheader false", tlabels("traefik.http.services.web.loadbalancer.passhostheader", "false"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.passhostheader", "always passes the Host header"}}},
		{"health interval too short", tlabels("traefik.http.services.web.loadbalancer.healthcheck.path", "/h",
			"traefik.http.services.web.loadbalancer.healthcheck.interval", "100ms"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.healthcheck.interval", "want a duration from 1s"}}},
		{"middleware not defined here", tlabels("traefik.http.routers.web.middlewares", "auth"),
			[]wantErr{{"traefik.http.routers.web.middlewares", `middleware "auth" is not defined`}}},
		{"middleware of the file provider", tlabels("traefik.http.routers.web.middlewares", "auth@file"),
			[]wantErr{{"traefik.http.routers.web.middlewares", "Traefik's file provider"}}},
		{"inline users still escaped for a stack file", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "test:$$apr1$$H6uskkkW$$IgXLP6ewTrSuBkTrqE8wj/"),
			[]wantErr{{"traefik.http.middlewares.auth.basicauth.users", `user "test": the hash has "$$"`}}},
		{"inline users with a plain-text password", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "a:"+tBcrypt+",b:hunter2"),
			[]wantErr{{"traefik.http.middlewares.auth.basicauth.users", `entry 2: user "b": a crypt(3) DES or plain-text password is refused`}}},
		{"inline users misspelt", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.user", "a:hunter2"),
			[]wantErr{{"traefik.http.middlewares.auth.basicauth.user", `basicauth option "user" is not supported`}}},
		{"inline users listed twice, in other case", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "a:hunter2",
			"traefik.http.middlewares.auth.basicauth.Users", "a:hunter2"),
			[]wantErr{{"traefik.http.middlewares.auth.basicauth.users", "in other case"},
				{"traefik.http.middlewares.auth.basicauth.Users", "plain-text password is refused"}}},
		{"every problem of a router, not only the first", tlabels(rule, "Host(`app.example.org`) && !PathPrefix(`/public`)",
			"traefik.http.routers.web.tls", "true",
			"traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.users", "a:"+tBcrypt),
			[]wantErr{{rule, `"!" is not representable`},
				{"traefik.http.routers.web.tls", "without tls.certresolver"}}},
		{"two routers make one route name", tlabels("traefik.http.routers.web.rule", "Host(`app.example.org`) && (PathPrefix(`/a`) || PathPrefix(`/b`))",
			"traefik.http.routers.web-2.rule", "Host(`other.example.org`)"),
			[]wantErr{{"traefik.http.routers.web-2.rule", "makes a route named web-2, as router web does"}}},
		{"tls.options without certresolver", tlabels("traefik.http.routers.web.tls.options", "default"),
			[]wantErr{{"traefik.http.routers.web.tls.options", "tls.options without tls.certresolver"}}},
		{"usersfile outside the secrets", tlabels("traefik.http.routers.web.middlewares", "auth",
			"traefik.http.middlewares.auth.basicauth.usersfile", "/etc/traefik/users"),
			[]wantErr{{"traefik.http.middlewares.auth.basicauth.usersfile", "/run/secrets/NAME"}}},
		{"stripprefix of another path", tlabels(rule, "Host(`app.example.org`) && PathPrefix(`/api`)",
			"traefik.http.routers.web.middlewares", "strip",
			"traefik.http.middlewares.strip.stripprefix.prefixes", "/v1"),
			[]wantErr{{"traefik.http.middlewares.strip.stripprefix.prefixes", "serves the path /api"}}},
		{"redirectscheme to http", tlabels("traefik.http.routers.web.middlewares", "r",
			"traefik.http.middlewares.r.redirectscheme.scheme", "http"),
			[]wantErr{{"traefik.http.middlewares.r.redirectscheme.scheme", "to https only"}}},
		{"redirect with no HTTPS router", tlabels("traefik.http.routers.web.middlewares", "r",
			"traefik.http.middlewares.r.redirectscheme.scheme", "https"),
			[]wantErr{{"traefik.http.middlewares.r.redirectscheme.scheme", "where no router of this service serves it"}}},
		{"ratelimit period", tlabels("traefik.http.routers.web.middlewares", "rl",
			"traefik.http.middlewares.rl.ratelimit.average", "10", "traefik.http.middlewares.rl.ratelimit.period", "10s"),
			[]wantErr{{"traefik.http.middlewares.rl.ratelimit.period", "want 1s, 1m or 1h"}}},
		{"ratelimit source criterion", tlabels("traefik.http.routers.web.middlewares", "rl",
			"traefik.http.middlewares.rl.ratelimit.average", "10",
			"traefik.http.middlewares.rl.ratelimit.sourcecriterion.requestheadername", "X-User"),
			[]wantErr{{"traefik.http.middlewares.rl.ratelimit.sourcecriterion.requestheadername", `ratelimit option "sourcecriterion.requestheadername"`}}},
		{"ipallowlist strategy", tlabels("traefik.http.routers.web.middlewares", "ips",
			"traefik.http.middlewares.ips.ipallowlist.sourcerange", "10.0.0.0/8",
			"traefik.http.middlewares.ips.ipallowlist.ipstrategy.depth", "2"),
			[]wantErr{{"traefik.http.middlewares.ips.ipallowlist.ipstrategy.depth", "not supported"}}},
		{"bad sourcerange", tlabels("traefik.http.routers.web.middlewares", "ips",
			"traefik.http.middlewares.ips.ipallowlist.sourcerange", "10.0.0.0/33"),
			[]wantErr{{"traefik.http.middlewares.ips.ipallowlist.sourcerange", ""}}},
		{"forwardauth (converted, not read)", tlabels("traefik.http.routers.web.middlewares", "sso",
			"traefik.http.middlewares.sso.forwardauth.address", "http://auth:4181/verify"),
			[]wantErr{{"traefik.http.middlewares.sso.forwardauth.address", `middleware type "forwardauth" is not supported`}}},
		{"unsupported middleware", tlabels("traefik.http.routers.web.middlewares", "retry",
			"traefik.http.middlewares.retry.retry.attempts", "4"),
			[]wantErr{{"traefik.http.middlewares.retry.retry.attempts", `middleware type "retry" is not supported`}}},
		{"two kinds in one middleware", tlabels("traefik.http.middlewares.m.compress", "true",
			"traefik.http.middlewares.m.stripprefix.prefixes", "/a"),
			[]wantErr{{"traefik.http.middlewares.m.stripprefix.prefixes", "one kind per middleware"}}},
		{"chain loop", tlabels("traefik.http.routers.web.middlewares", "a",
			"traefik.http.middlewares.a.chain.middlewares", "b",
			"traefik.http.middlewares.b.chain.middlewares", "a"),
			[]wantErr{{"traefik.http.middlewares.b.chain.middlewares", "in the chain twice"}}},
		{"contradicting middlewares", tlabels("traefik.http.routers.web.middlewares", "a,b",
			"traefik.http.middlewares.a.ipallowlist.sourcerange", "10.0.0.0/8",
			"traefik.http.middlewares.b.ipallowlist.sourcerange", "192.168.0.0/16"),
			[]wantErr{{"traefik.http.middlewares.b.ipallowlist.sourcerange", "contradicts traefik.http.middlewares.a.ipallowlist.sourcerange"}}},
		{"two routers on the same host and side", tlabels("traefik.http.routers.other.rule", "Host(`app.example.org`)"),
			[]wantErr{{"traefik.http.routers.web.rule", "routers other and web both match app.example.org /"}}},
		{"HTTP and HTTPS routers with different middlewares", tlabels(append(https,
			"traefik.http.routers.plain.rule", "Host(`app.example.org`)",
			"traefik.http.routers.plain.middlewares", "gz",
			"traefik.http.middlewares.gz.compress", "true")...),
			[]wantErr{{"traefik.http.routers.plain.rule", "with different compress"}}},
		{"one option twice, in two cases", tlabels("traefik.http.services.web.loadBalancer.server.port", "9000"),
			[]wantErr{{"traefik.http.services.web.loadbalancer.server.port", "sets the option of traefik.http.services.web.loadBalancer.server.port again"}}},
		{"udp", tlabels("traefik.udp.routers.dns.entrypoints", "dns"), []wantErr{{"traefik.udp.routers.dns.entrypoints", "UDP routing"}}},
		{"unknown section", tlabels("traefik.http.serversTransports.x.insecureSkipVerify", "true"),
			[]wantErr{{"traefik.http.serversTransports.x.insecureSkipVerify", "not supported by swarmgate"}}},
		{"router name swarmgate cannot take", tlabels("traefik.http.routers.web.rule", "<unset>",
			"traefik.http.routers.wéb.rule", "Host(`app.example.org`)"),
			[]wantErr{{"traefik.http.routers.wéb.rule", "router name"}}},
		// TCP
		{"TCP HostSNI(`*`) without a port", only("traefik.enable", "true", "traefik.tcp.routers.db.rule", "HostSNI(`*`)",
			"traefik.tcp.routers.db.entrypoints", "postgres", "traefik.tcp.services.db.loadbalancer.server.port", "5432"),
			[]wantErr{{"traefik.tcp.routers.db.entrypoints", "set swarmgate.routes.db.tcp.port"}}},
		{"TCP names without TLS", only("traefik.enable", "true", "traefik.tcp.routers.db.rule", "HostSNI(`db.example.org`)",
			"traefik.tcp.services.db.loadbalancer.server.port", "5432"),
			[]wantErr{{"traefik.tcp.routers.db.rule", "needs TLS: set tls.passthrough=true"}}},
		{"TCP TLS termination", only("traefik.enable", "true", "traefik.tcp.routers.db.rule", "HostSNI(`db.example.org`)",
			"traefik.tcp.routers.db.tls", "true", "traefik.tcp.services.db.loadbalancer.server.port", "5432"),
			[]wantErr{{"traefik.tcp.routers.db.tls", "does not terminate TLS"}}},
		{"TCP passthrough of every name", only("traefik.enable", "true", "traefik.tcp.routers.db.rule", "HostSNI(`*`)",
			"traefik.tcp.routers.db.tls.passthrough", "true", "traefik.tcp.services.db.loadbalancer.server.port", "5432"),
			[]wantErr{{"traefik.tcp.routers.db.rule", "list the names"}}},
		{"TCP middlewares", only("traefik.enable", "true", "traefik.tcp.middlewares.ips.ipallowlist.sourcerange", "10.0.0.0/8",
			"traefik.tcp.routers.db.rule", "HostSNI(`db.example.org`)", "traefik.tcp.routers.db.tls.passthrough", "true",
			"traefik.tcp.services.db.loadbalancer.server.port", "5432"),
			[]wantErr{{"traefik.tcp.middlewares.ips.ipallowlist.sourcerange", "TCP middlewares"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseLabelsFor("web", tt.labels, withTraefik)
			if got != nil {
				t.Errorf("routes = %+v, want nil (the service is skipped)", got)
			}
			if len(errs) != len(tt.want) {
				t.Errorf("got %d errors, want %d:", len(errs), len(tt.want))
				for _, e := range errs {
					t.Errorf("  %v", e)
				}
				return
			}
			for i, e := range errs {
				if e.Label != tt.want[i].label || !strings.Contains(e.Reason, tt.want[i].reason) {
					t.Errorf("error %d = %v; want label %s, reason containing %q", i, e, tt.want[i].label, tt.want[i].reason)
				}
				if secretLabel(e.Label) {
					if strings.Contains(e.Value, "$") || strings.Contains(e.Value, "hunter2") ||
						strings.Contains(e.Reason, "$apr1") || strings.Contains(e.Reason, "hunter2") || !strings.Contains(e.Value, "withheld") {
						t.Errorf("error %d %v shows the password hashes", i, e)
					}
				} else if v := tt.labels[e.Label]; e.Value != v {
					t.Errorf("error %d value %q, want the label's value %q", i, e.Value, v)
				}
			}
		})
	}
}

func TestParseDialects(t *testing.T) {
	for in, want := range map[string]Dialects{
		"swarmgate,interlock":          DefaultDialects,
		"swarmgate, interlock,Traefik": DefaultDialects | DialectTraefik,
		"traefik":                      DialectTraefik,
	} {
		if got, err := ParseDialects(in); err != nil || got != want {
			t.Errorf("ParseDialects(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "nginx", "swarmgate,"} {
		if _, err := ParseDialects(in); err == nil {
			t.Errorf("ParseDialects(%q): no error", in)
		}
	}
	var d Dialects
	if d.String() != "swarmgate,interlock" {
		t.Errorf("zero Dialects = %q, want the default", d.String())
	}
	if err := d.Set("swarmgate,interlock,traefik"); err != nil || d.String() != "swarmgate,interlock,traefik" {
		t.Errorf("Set: %v, %q", err, d.String())
	}
}

// The Swarm source lists the tasks of a service outside full listings only
// when its labels are of a dialect it reads.
func TestDialectsPublishes(t *testing.T) {
	tests := []struct {
		d      Dialects
		labels map[string]string
		want   bool
	}{
		{0, tlabels(), false},
		{withTraefik, tlabels(), true},
		{DialectTraefik, labels(), false},
		{0, labels(), true},
		{DialectTraefik, ilabels(), false},
		{0, ilabels(), true},
		{withTraefik, only("com.example.team", "shop"), false},
	}
	for i, tt := range tests {
		if got := tt.d.publishes(tt.labels); got != tt.want {
			t.Errorf("%d: %v.publishes(%v) = %v, want %v", i, tt.d, tt.labels, got, tt.want)
		}
	}
}
