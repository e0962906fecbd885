package router

import (
	"errors"
	"testing"
)

// FuzzParseHost: a host pattern is refused with ErrInvalidHost or parsed to
// a canonical form that parses to itself.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"App.Example.org", "*.example.org", "example.org.", "a_b.example", "xn--bcher-kva.example", "host:80", "ünï.example", "*", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		host, wildcard, err := ParseHost(pattern)
		if err != nil {
			if !errors.Is(err, ErrInvalidHost) {
				t.Fatalf("ParseHost(%q): %v does not wrap ErrInvalidHost", pattern, err)
			}
			return
		}
		again, wild2, err := ParseHost(host)
		if err != nil || again != host || wild2 != wildcard {
			t.Fatalf("ParseHost(%q) = %q %v, but ParseHost(%q) = %q %v %v", pattern, host, wildcard, host, again, wild2, err)
		}
	})
}

// FuzzParsePath: a prefix is refused with ErrInvalidPath or parsed to a
// canonical form that parses to itself and passes CheckPath.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/", "/api/", "/a/../b", "/%2e%2e/x", "/a//b", "api", "/x?y", "/caf%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prefix string) {
		p, err := ParsePath(prefix)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("ParsePath(%q): %v does not wrap ErrInvalidPath", prefix, err)
			}
			return
		}
		if again, err := ParsePath(p); err != nil || again != p {
			t.Fatalf("ParsePath(%q) = %q, but ParsePath(%q) = %q %v", prefix, p, p, again, err)
		}
		if err := CheckPath(p); err != nil {
			t.Fatalf("canonical %q fails CheckPath: %v", p, err)
		}
	})
}

// FuzzParseExactPath: an exact path is refused with ErrInvalidPath or
// kept as written, and then passes CheckPath.
func FuzzParseExactPath(f *testing.F) {
	for _, s := range []string{"/", "/health", "/docs/", "/a/../b", "/x?y", "health"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		p, err := ParseExactPath(path)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("ParseExactPath(%q): %v does not wrap ErrInvalidPath", path, err)
			}
			return
		}
		if p != path || CheckPath(p) != nil {
			t.Fatalf("ParseExactPath(%q) = %q, CheckPath %v", path, p, CheckPath(p))
		}
	})
}

// FuzzLookup: on a table of prefix and exact routes, any request path
// reaches the route the linear-scan specification (naiveLookup) names.
func FuzzLookup(f *testing.F) {
	routes := []route{
		{"a.test", "/", 0, "a-root"},
		{"a.test", "/health", 0, "a-health"},
		{"a.test", "=/health", 0, "a-health-exact"},
		{"a.test", "=/docs/", 0, "a-docs-exact"},
		{"a.test", "/api/v1", 1, "a-api-v1"},
		{"b.test", "=/health", 0, "b-health-exact"},
		{"b.test", "=/", 0, "b-root-exact"},
		{"*.test", "/health", 0, "wild-health"},
		{"*.test", "=/status", 2, "wild-status-exact"},
		{"", "/", 0, "default"},
		{"", "=/ping", 0, "default-ping-exact"},
	}
	tab := build(f, routes)
	hosts := []string{"a.test", "b.test", "c.test", "x.b.test", "other.org", ""}
	for _, p := range []string{"/health", "/health/", "/health/x", "/healthz", "/docs/", "/docs", "/", "", "*", "/status", "/api/v1/x", "/ping"} {
		f.Add(uint8(0), p)
		f.Add(uint8(1), p)
		f.Add(uint8(3), p)
	}
	f.Fuzz(func(t *testing.T, h uint8, path string) {
		host := hosts[int(h)%len(hosts)]
		want, wantOK := naiveLookup(routes, host, path)
		got, _, ok := tab.Lookup(host, path)
		if got != want || ok != wantOK {
			t.Fatalf("Lookup(%q, %q) = %q %v, naive %q %v", host, path, got, ok, want, wantOK)
		}
	})
}
