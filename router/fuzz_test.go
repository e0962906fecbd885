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
