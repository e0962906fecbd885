package discovery

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

func TestParsePolicyLabels(t *testing.T) {
	all := labels(
		"swarmgate.allow", "10.0.0.0/8, 2001:db8::/32",
		"swarmgate.deny", "10.6.6.6",
		"swarmgate.auth.basic", "admin.htpasswd",
		"swarmgate.auth.basic.realm", "Shop admin",
		"swarmgate.ratelimit", "10/s",
		"swarmgate.ratelimit.burst", "20",
		"swarmgate.body.max", "10m",
		"swarmgate.headers.request.x-tenant", "shop",
		"swarmgate.headers.response.Server", "",
		"swarmgate.headers.response.X-Frame-Options", "DENY",
		"swarmgate.cors.origins", "https://app.example.org",
		"swarmgate.cors.methods", "get, put",
		"swarmgate.cors.headers", "content-type",
		"swarmgate.cors.credentials", "true",
		"swarmgate.cors.max-age", "600",
		"swarmgate.compress", "br, gzip",
	)
	want := &route.Policy{
		Allow:      []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		Deny:       []netip.Prefix{netip.MustParsePrefix("10.6.6.6/32")},
		BasicAuth:  "admin.htpasswd",
		BasicRealm: "Shop admin",
		RateLimit:  route.Rate{N: 10, Per: time.Second, Burst: 20},
		BodyMax:    10 << 20,
		// Labels are applied in sorted order: Server before X-Frame-Options.
		RequestHeaders:  []route.Header{{Name: "X-Tenant", Value: "shop"}},
		ResponseHeaders: []route.Header{{Name: "Server"}, {Name: "X-Frame-Options", Value: "DENY"}},
		CORS: route.CORS{Origins: []string{"https://app.example.org"}, Methods: []string{"GET", "PUT"},
			Headers: []string{"Content-Type"}, Credentials: true, MaxAge: 10 * time.Minute},
		Compress: []string{"br", "gzip"},
	}
	routes, errs := ParseLabels("web", all)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(routes[0].Policy, want) {
		t.Errorf("policy\n got %+v\nwant %+v", routes[0].Policy, want)
	}

	// Named routes take the same keys and inherit none of them.
	routes, errs = ParseLabels("web", only(
		"swarmgate.port", "8080",
		"swarmgate.routes.api.hosts", "api.example.org",
		"swarmgate.routes.api.ratelimit", "100/m",
		"swarmgate.routes.api.headers.request.X-Api", "1",
		"swarmgate.routes.www.hosts", "www.example.org",
	))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	api := &route.Policy{RateLimit: route.Rate{N: 100, Per: time.Minute, Burst: 100}, RequestHeaders: []route.Header{{Name: "X-Api", Value: "1"}}}
	if !reflect.DeepEqual(routes[0].Policy, api) || routes[1].Policy != nil {
		t.Errorf("named routes: api %+v, www %+v", routes[0].Policy, routes[1].Policy)
	}

	// Inline users, named routes too, with a file besides, and a realm.
	routes, errs = ParseLabels("web", labels(
		"swarmgate.auth.users", "alice:"+tBcrypt+", bob:$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB.",
		"swarmgate.auth.basic.realm", "Staff",
		"swarmgate.routes.api.hosts", "api.example.org",
		"swarmgate.routes.api.auth.users", "carol:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=",
		"swarmgate.routes.api.auth.basic", "api.htpasswd",
	))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if p := routes[0].Policy; p == nil || p.BasicRealm != "Staff" || !reflect.DeepEqual(p.BasicUsers,
		[]route.BasicUser{{Name: "alice", Hash: tBcrypt}, {Name: "bob", Hash: "$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB."}}) {
		t.Errorf("auth.users: %+v", p)
	}
	if p := routes[1].Policy; p == nil || p.BasicAuth != "api.htpasswd" || !reflect.DeepEqual(p.BasicUsers,
		[]route.BasicUser{{Name: "carol", Hash: "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="}}) {
		t.Errorf("routes.api.auth.users with auth.basic: %+v", p)
	}

	// Forward auth.
	routes, errs = ParseLabels("web", labels(
		"swarmgate.auth.forward", "http://auth:9091/verify",
		"swarmgate.auth.forward.headers", "remote-user, Remote-Groups",
	))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if p := routes[0].Policy; p == nil || p.ForwardAuth != "http://auth:9091/verify" || !reflect.DeepEqual(p.ForwardAuthHeaders, []string{"Remote-User", "Remote-Groups"}) {
		t.Errorf("forward auth: %+v", p)
	}

	// An error page alone is a policy the proxy serves.
	if routes, errs := ParseLabels("web", labels("swarmgate.errors.page", "shop-errors.html")); len(errs) > 0 ||
		!reflect.DeepEqual(routes[0].Policy, &route.Policy{ErrorPage: "shop-errors.html"}) {
		t.Errorf("errors.page: %+v %v", routes[0].Policy, errs)
	}

	// Request matches, in a named route too.
	routes, errs = ParseLabels("web", labels(
		"swarmgate.match.header", "x-canary = 1",
		"swarmgate.routes.beta.hosts", "shop.example.org",
		"swarmgate.routes.beta.match.cookie", "canary=yes",
	))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(routes[0].Policy, &route.Policy{MatchHeader: route.Match{Name: "X-Canary", Value: "1"}}) ||
		!reflect.DeepEqual(routes[1].Policy, &route.Policy{MatchCookie: route.Match{Name: "canary", Value: "yes"}}) {
		t.Errorf("matches: %+v, %+v", routes[0].Policy, routes[1].Policy)
	}

	// No policy label, or only compress=false, is no policy.
	for _, l := range []map[string]string{labels(), labels("swarmgate.compress", "false")} {
		if routes, _ := ParseLabels("web", l); routes[0].Policy != nil {
			t.Errorf("%v: policy %+v, want nil", l, routes[0].Policy)
		}
	}
}

func TestParsePolicyLabelErrors(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   []wantErr
	}{
		{"bad CIDR", labels("swarmgate.allow", "10.0.0.0/33"), []wantErr{{"swarmgate.allow", `"10.0.0.0/33": want a CIDR`}}},
		{"deny hostname", labels("swarmgate.deny", "evil.org"), []wantErr{{"swarmgate.deny", "want a CIDR"}}},
		{"auth file outside the secrets", labels("swarmgate.auth.basic", "../etc/passwd"), []wantErr{{"swarmgate.auth.basic", "file name in the secrets directory"}}},
		{"realm without auth", labels("swarmgate.auth.basic.realm", "x"), []wantErr{{"swarmgate.auth.basic.realm", "needs swarmgate.auth.users or swarmgate.auth.basic"}}},
		{"users: plain-text password", labels("swarmgate.auth.users", "alice:"+tBcrypt+",bob:hunter2"),
			[]wantErr{{"swarmgate.auth.users", `entry 2: user "bob": a crypt(3) DES or plain-text password is refused`}}},
		{"users: one twice", labels("swarmgate.auth.users", "alice:"+tBcrypt+",alice:"+tBcrypt),
			[]wantErr{{"swarmgate.auth.users", `user "alice" listed twice`}}},
		{"users: escaped for a stack file", labels("swarmgate.auth.users", "alice:$$2y$$05$$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW"),
			[]wantErr{{"swarmgate.auth.users", `the hash has "$$"`}}},
		{"users: empty entry", labels("swarmgate.auth.users", "alice:"+tBcrypt+","), []wantErr{{"swarmgate.auth.users", "entry 2 is empty"}}},
		{"users: empty", labels("swarmgate.auth.users", " "), []wantErr{{"swarmgate.auth.users", "empty value"}}},
		{"users with forward auth", labels("swarmgate.auth.forward", "http://auth/", "swarmgate.auth.users", "alice:"+tBcrypt),
			[]wantErr{{"swarmgate.auth.forward", "one kind of auth; it has swarmgate.auth.users too"}}},
		{"users on an L4 route", only("swarmgate.tcp.port", "5432", "swarmgate.port", "5432", "swarmgate.auth.users", "alice:"+tBcrypt),
			[]wantErr{{"swarmgate.auth.users", "applies to HTTP routes only"}}},
		{"users misspelt", labels("swarmgate.auth.user", "alice:hunter2"), []wantErr{{"swarmgate.auth.user", "did you mean swarmgate.auth.users?"}}},
		{"users of a bad route name", labels("swarmgate.routes.a!b.auth.users", "alice:hunter2"), []wantErr{{"swarmgate.routes.a!b.auth.users", "route name"}}},
		{"realm with a quote", labels("swarmgate.auth.basic", "f", "swarmgate.auth.basic.realm", `a"b`), []wantErr{{"swarmgate.auth.basic.realm", "not allowed"}}},
		{"auth service without scheme", labels("swarmgate.auth.forward", "auth:9091/verify"), []wantErr{{"swarmgate.auth.forward", "want an http or https URL"}}},
		{"auth fields without the service", labels("swarmgate.auth.forward.headers", "Remote-User"), []wantErr{{"swarmgate.auth.forward.headers", "needs swarmgate.auth.forward"}}},
		{"auth field set by the edge", labels("swarmgate.auth.forward", "http://auth/", "swarmgate.auth.forward.headers", "X-Forwarded-For"),
			[]wantErr{{"swarmgate.auth.forward.headers", "X-Forwarded-For is set by the edge"}}},
		{"two kinds of auth", labels("swarmgate.auth.forward", "http://auth/", "swarmgate.auth.basic", "users"),
			[]wantErr{{"swarmgate.auth.forward", "one kind of auth; it has swarmgate.auth.basic too"}}},
		{"error page not HTML", labels("swarmgate.errors.page", "shop.key"), []wantErr{{"swarmgate.errors.page", "want the name of an .html file"}}},
		{"error page in another directory", labels("swarmgate.errors.page", "../x.html"), []wantErr{{"swarmgate.errors.page", "file name in the secrets directory"}}},
		{"match without a value", labels("swarmgate.match.header", "X-Canary"), []wantErr{{"swarmgate.match.header", "want Name=value"}}},
		{"match on a hop-by-hop field", labels("swarmgate.match.header", "Connection=close"), []wantErr{{"swarmgate.match.header", "Connection is a hop-by-hop field"}}},
		{"match cookie with a space", labels("swarmgate.match.cookie", "beta=a b"), []wantErr{{"swarmgate.match.cookie", `cookie value "a b"`}}},
		{"match on an L4 route", only("swarmgate.tcp.port", "5432", "swarmgate.port", "5432", "swarmgate.match.cookie", "a=b"),
			[]wantErr{{"swarmgate.match.cookie", "applies to HTTP routes only"}}},
		{"rate per day", labels("swarmgate.ratelimit", "1000/d"), []wantErr{{"swarmgate.ratelimit", "want N/s, N/m or N/h"}}},
		{"burst without rate", labels("swarmgate.ratelimit.burst", "5"), []wantErr{{"swarmgate.ratelimit.burst", "needs swarmgate.ratelimit"}}},
		{"burst zero", labels("swarmgate.ratelimit", "1/s", "swarmgate.ratelimit.burst", "0"), []wantErr{{"swarmgate.ratelimit.burst", "from 1"}}},
		{"body size unit", labels("swarmgate.body.max", "10mb"), []wantErr{{"swarmgate.body.max", "want a size"}}},
		{"framing header", labels("swarmgate.headers.request.Content-Length", "5"), []wantErr{{"swarmgate.headers.request.Content-Length", "framing"}}},
		{"hop-by-hop header", labels("swarmgate.headers.response.connection", "close"), []wantErr{{"swarmgate.headers.response.connection", "hop-by-hop"}}},
		{"forwarding header", labels("swarmgate.headers.request.X-Real-IP", "1.2.3.4"), []wantErr{{"swarmgate.headers.request.X-Real-IP", "set by the edge"}}},
		{"header twice", labels("swarmgate.headers.request.X-A", "1", "swarmgate.headers.request.x-a", "2"), []wantErr{{"swarmgate.headers.request.x-a", "set by another label"}}},
		{"header without name", labels("swarmgate.headers.request", "x"), []wantErr{{"swarmgate.headers.request", "unknown label"}}},
		{"CORS origin with a path", labels("swarmgate.cors.origins", "https://a.org/app"), []wantErr{{"swarmgate.cors.origins", "scheme://host"}}},
		{"CORS key without origins", labels("swarmgate.cors.methods", "GET"), []wantErr{{"swarmgate.cors.methods", "needs swarmgate.cors.origins"}}},
		{"credentials for every origin", labels("swarmgate.cors.origins", "*", "swarmgate.cors.credentials", "true"),
			[]wantErr{{"swarmgate.cors.credentials", "list the origins"}}},
		{"compress deflate", labels("swarmgate.compress", "deflate"), []wantErr{{"swarmgate.compress", `encoding "deflate"`}}},
		{"empty compress", labels("swarmgate.compress", " "), []wantErr{{"swarmgate.compress", "empty value"}}},
		{"policy on an L4 route", only("swarmgate.tcp.port", "5432", "swarmgate.port", "5432", "swarmgate.ratelimit", "1/s"),
			[]wantErr{{"swarmgate.ratelimit", "applies to HTTP routes only"}}},
		{"header on an L4 route", only("swarmgate.tcp.port", "5432", "swarmgate.port", "5432", "swarmgate.headers.request.X-A", "1"),
			[]wantErr{{"swarmgate.headers.request.X-A", "applies to HTTP routes only"}}},
		{"named route, bad value", labels("swarmgate.routes.api.hosts", "api.org", "swarmgate.routes.api.body.max", "huge"),
			[]wantErr{{"swarmgate.routes.api.body.max", "want a size"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkRejected(t, tc.labels, tc.want) })
	}
}
