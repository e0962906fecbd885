package discovery

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestTraefikRuleAlternatives(t *testing.T) {
	tests := []struct {
		rule string
		want []ruleAlt
	}{
		{"Host(`a.org`)", []ruleAlt{{hosts: []string{"a.org"}}}},
		{"Host(`B.org`, `a.org`)", []ruleAlt{{hosts: []string{"a.org", "b.org"}}}},
		{`Host("a.org")`, []ruleAlt{{hosts: []string{"a.org"}}}},
		{"HostHeader(`a.org`)", []ruleAlt{{hosts: []string{"a.org"}}}},
		{"Host(`a.org`) || Host(`b.org`)", []ruleAlt{{hosts: []string{"a.org"}}, {hosts: []string{"b.org"}}}},
		{"Host(`a.org`) && PathPrefix(`/api`)", []ruleAlt{{hosts: []string{"a.org"}, path: "/api"}}},
		{"PathPrefix(`/api`)", []ruleAlt{{path: "/api"}}},
		{"Path(`/health`)", []ruleAlt{{path: "/health", exact: true}}},
		{"PathPrefix(`/a`, `/b`)", []ruleAlt{{path: "/a"}, {path: "/b"}}},
		{"Host(`a.org`) && (PathPrefix(`/a`) || Path(`/b`))",
			[]ruleAlt{{hosts: []string{"a.org"}, path: "/a"}, {hosts: []string{"a.org"}, path: "/b", exact: true}}},
		{"(Host(`a.org`) || Host(`b.org`)) && PathPrefix(`/x`)",
			[]ruleAlt{{hosts: []string{"a.org"}, path: "/x"}, {hosts: []string{"b.org"}, path: "/x"}}},
		{"Host(`a.org`,`b.org`) && Host(`b.org`,`c.org`)", []ruleAlt{{hosts: []string{"b.org"}}}},
		{"PathPrefix(`/a`) && PathPrefix(`/a/b`)", []ruleAlt{{path: "/a/b"}}},
		{"PathPrefix(`/a/b`) && PathPrefix(`/a`)", []ruleAlt{{path: "/a/b"}}},
		{"Path(`/a/b`) && PathPrefix(`/a`)", []ruleAlt{{path: "/a/b", exact: true}}},
		{"PathPrefix(`/a`) && Path(`/a/b`)", []ruleAlt{{path: "/a/b", exact: true}}},
		{"Host(`a.org`) && PathPrefix(`/a`) || Host(`b.org`)", // && binds tighter than ||
			[]ruleAlt{{hosts: []string{"a.org"}, path: "/a"}, {hosts: []string{"b.org"}}}},
		{"Host(`a.org`) || Host(`a.org`)", []ruleAlt{{hosts: []string{"a.org"}}}},
		{"((Host(`a.org`)))", []ruleAlt{{hosts: []string{"a.org"}}}},
		{"Host(`a.org`) && (Host(`b.org`) || PathPrefix(`/p`))", []ruleAlt{{hosts: []string{"a.org"}, path: "/p"}}},
		{"  Host( `a.org` )\n&&\tPathPrefix(`/`)  ", []ruleAlt{{hosts: []string{"a.org"}, path: "/"}}},
		{"Host(`a.org`) && Path(`/a`) || Host(`a.org`) && Path(`/b`)",
			[]ruleAlt{{hosts: []string{"a.org"}, path: "/a", exact: true}, {hosts: []string{"a.org"}, path: "/b", exact: true}}},
	}
	for _, tt := range tests {
		e, err := parseRule(tt.rule, httpMatchers)
		if err != nil {
			t.Errorf("parseRule(%q): %v", tt.rule, err)
			continue
		}
		got, err := ruleAlts(e, false)
		if err != nil {
			t.Errorf("ruleAlts(%q): %v", tt.rule, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.rule, got, tt.want)
		}
	}
}

func TestTraefikTCPRuleAlternatives(t *testing.T) {
	tests := []struct {
		rule string
		want []ruleAlt
	}{
		{"HostSNI(`db.a.org`)", []ruleAlt{{hosts: []string{"db.a.org"}}}},
		{"HostSNI(`a.org`) || HostSNI(`b.org`)", []ruleAlt{{hosts: []string{"a.org"}}, {hosts: []string{"b.org"}}}},
		{"HostSNI(`*`)", []ruleAlt{{}}},
	}
	for _, tt := range tests {
		e, err := parseRule(tt.rule, tcpMatchers)
		if err != nil {
			t.Errorf("parseRule(%q): %v", tt.rule, err)
			continue
		}
		got, err := ruleAlts(e, true)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tt.rule, got, err, tt.want)
		}
	}
}

func TestTraefikRuleErrors(t *testing.T) {
	tests := []struct {
		rule, want string
	}{
		// syntax
		{"", "empty"},
		{"   ", "empty"},
		{"Host(`a.org`", `at column 13: want "," or ")" in Host, got end of rule`},
		{"Host(`a.org)", "at column 6: unterminated string"},
		{`Host("a.org)`, "at column 6: unterminated string"},
		{`Host("a\q")`, "bad string"},
		{"Host()", "Host takes at least one string"},
		{"Host(a.org)", "at column 7: unexpected \".\""},
		{"Host(`a.org`) & Path(`/`)", "at column 15: want &&"},
		{"Host(`a.org`) | Path(`/`)", "want ||"},
		{"Host(`a.org`) Path(`/`)", "at column 15: unexpected matcher name; want && or ||"},
		{"Host(`a.org`) &&", "at column 17: want a matcher"},
		{"(Host(`a.org`)", `want ")" to close the "(" at column 1`},
		{"Host(`a.org`))", "unexpected \")\""},
		{"host(`a.org`)", `unknown matcher "host" (did you mean Host?)`},
		{"Hots(`a.org`)", `unknown matcher "Hots" (did you mean Host?)`},
		{"Frobnicate(`x`)", `unknown matcher "Frobnicate"`},
		{"Host `a.org`", `want "(" after Host`},
		{"Host(`a`,)", "want a string"},
		{"HostSNI(`a.org`)", `unknown matcher "HostSNI"`}, // an HTTP rule
		{strings.Repeat("(", 40) + "Host(`a.org`)" + strings.Repeat(")", 40), "nested deeper than 32"},
		{"Host(`" + strings.Repeat("a", maxRuleLen) + "`)", "longer than 4096 bytes"},
		// meaning
		{"!Host(`a.org`)", `at column 1: "!" is not representable`},
		{"Host(`a.org`) && Method(`GET`)", "at column 18: Method(`GET`) is not representable: swarmgate routes by host and path (Host, Path, PathPrefix)"},
		// v2's path variables are regular expressions
		{"Host(`a.org`) && Path(`/users/{id:[0-9]+}`)", "at column 18: Path(`/users/{id:[0-9]+}`): a {name} or {name:regexp} in a path is a regular expression in Traefik v2 (PathRegexp in v3), and swarmgate routes literal paths (the nearest literal route is PathPrefix(`/users`))"},
		{"PathPrefix(`/{tenant}/api`)", "regular expression in Traefik v2 (PathRegexp in v3), and swarmgate routes literal paths (the nearest literal route is PathPrefix(`/`))"},
		{"Header(`X-A`, `1`)", "Header(`X-A`, `1`) is not representable"},
		{"HostRegexp(`^.+\\.a\\.org$`)", "HostRegexp"},
		{"PathRegexp(`^/a`)", "PathRegexp"},
		{"Query(`a`, `b`)", "Query"},
		{"ClientIP(`10.0.0.0/8`)", "ClientIP"},
		{"Host(`*.a.org`)", "Traefik's wildcards are HostRegexp"},
		{"Host(`a.org`) && Host(`b.org`)", "matches no request"},
		{"Path(`/a`) && Path(`/b`)", "matches no request"},
		{"PathPrefix(`/a`) && PathPrefix(`/b`)", "matches no request"},
		{"Path(`/b`) && PathPrefix(`/a`)", "matches no request"},
		{manyAlts(8, 9), "more than 64 alternatives"},
	}
	for _, tt := range tests {
		e, err := parseRule(tt.rule, httpMatchers)
		if err == nil {
			_, err = ruleAlts(e, false)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.rule, err, tt.want)
		}
	}
}

func TestTraefikTCPRuleErrors(t *testing.T) {
	for rule, want := range map[string]string{
		"HostSNI(`*`, `a.org`)":                "`*` (every connection) with names",
		"HostSNI(`a.org`) && ALPN(`h2`)":       "ALPN(`h2`) is not representable: swarmgate routes TCP by SNI",
		"HostSNIRegexp(`^.+$`)":                "HostSNIRegexp",
		"Host(`a.org`)":                        `unknown matcher "Host"`,
		"HostSNI(`a.org`) && HostSNI(`b.org`)": "matches no request",
	} {
		e, err := parseRule(rule, tcpMatchers)
		if err == nil {
			_, err = ruleAlts(e, true)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", rule, err, want)
		}
	}
}

// manyAlts is a rule of hosts x paths alternatives.
func manyAlts(hosts, paths int) string {
	var h, p []string
	for i := range hosts {
		h = append(h, fmt.Sprintf("Host(`h%d.org`)", i))
	}
	for i := range paths {
		p = append(p, fmt.Sprintf("PathPrefix(`/p%d`)", i))
	}
	return "(" + strings.Join(h, " || ") + ") && (" + strings.Join(p, " || ") + ")"
}

func FuzzTraefikRule(f *testing.F) {
	f.Add("Host(`a.org`) && (PathPrefix(`/a`) || Path(\"/b\"))")
	f.Add("!Host(`a.org`) || Method(`GET`)")
	f.Add("((Host(`a.org`, `b.org`)) && PathPrefix(`/x`, `/y`))")
	f.Add("HostSNI(`*`)")
	f.Fuzz(func(t *testing.T, rule string) {
		for _, tcp := range []bool{false, true} {
			matchers := httpMatchers
			if tcp {
				matchers = tcpMatchers
			}
			e, err := parseRule(rule, matchers)
			if err != nil {
				continue
			}
			alts, err := ruleAlts(e, tcp)
			if err != nil {
				continue
			}
			if len(alts) == 0 || len(alts) > maxRuleAlts {
				t.Fatalf("%q: %d alternatives", rule, len(alts))
			}
			for _, a := range alts {
				if a.hosts != nil && (len(a.hosts) == 0 || !slices.IsSorted(a.hosts)) {
					t.Fatalf("%q: hosts %q", rule, a.hosts)
				}
			}
		}
	})
}

// FuzzTraefikLabels holds the parser's promises for the Traefik dialect: a
// service gets routes or errors, never both; every error names the service,
// a label and a reason, and the value as written (inline basic-auth users
// excepted: they are withheld); every route publishes something.
func FuzzTraefikLabels(f *testing.F) {
	f.Add("Host(`a.example.org`) && PathPrefix(`/api`)", "traefik.http.middlewares.m.stripprefix.prefixes", "/api", "web")
	f.Add("Host(`a.example.org`) || Host(`b.example.org`)", "traefik.http.middlewares.m.ratelimit.average", "10", "websecure")
	f.Add("PathPrefix(`/`)", "traefik.http.middlewares.m.chain.middlewares", "m", "")
	f.Add("Host(`a.example.org`)", "traefik.http.routers.r.tls.certresolver", "le", "websecure")
	f.Fuzz(func(t *testing.T, rule, k, v, entrypoints string) {
		in := map[string]string{
			"traefik.enable":                                   "true",
			"traefik.http.routers.r.rule":                      rule,
			"traefik.http.routers.r.middlewares":               "m",
			"traefik.http.services.s.loadbalancer.server.port": "8080",
			k: v,
		}
		if entrypoints != "" {
			in["traefik.http.routers.r.entrypoints"] = entrypoints
		}
		routes, errs := ParseLabelsFor("svc", in, withTraefik)
		if len(errs) > 0 && routes != nil {
			t.Fatalf("routes %v with errors %v", routes, errs)
		}
		for _, e := range errs {
			if e.Service != "svc" || e.Label == "" || e.Reason == "" {
				t.Fatalf("error does not name service, label and reason: %#v", e)
			}
			if secretLabel(e.Label) {
				if v := in[e.Label]; v != "" && strings.Contains(e.Value+e.Reason, v) {
					t.Fatalf("error %v shows the value of %s", e, e.Label)
				}
				continue
			}
			if v, ok := in[e.Label]; (ok && e.Value != v) || (!ok && e.Value != "" && e.Value != rule) {
				t.Fatalf("error value %q is not label %s's value", e.Value, e.Label)
			}
		}
		for _, r := range routes {
			if r.Port != 8080 || r.Name == "" {
				t.Fatalf("route %+v", r)
			}
			if len(r.Hosts) == 0 && len(r.SNI) == 0 && r.TCPPort == 0 && !r.Default {
				t.Fatalf("route publishes nothing: %+v", r)
			}
		}
	})
}
