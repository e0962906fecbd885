package router

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, c := range []struct {
		in, want string
		wildcard bool
		err      string // fragment of the error text; "" for success
	}{
		{"app.example.org", "app.example.org", false, ""},
		{"App.Example.ORG.", "app.example.org", false, ""},
		{"*.Example.org", "*.example.org", true, ""},
		{"10.0.0.1", "10.0.0.1", false, ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", false, ""},
		{long + ".org", long + ".org", false, ""},

		{"", "", false, "empty host name"},
		{"https://a.org", "", false, `host "https://a.org": a host name, not a URL (no scheme)`},
		{"a.org/x", "", false, "no path"},
		{"a.org:8080", "", false, "no port"},
		{"[::1]", "", false, "no port"},
		{"a.*.org", "", false, "whole first label"},
		{"*", "", false, "whole first label"},
		{"*.", "", false, "whole first label"},
		{".", "", false, "1 to 253"},
		{"a*.org", "", false, `'*' is not allowed`},
		{"A_b.org", "", false, `host "a_b.org": '_' is not allowed in a host name`},
		{"-a.org", "", false, "start or end with '-'"},
		{long + "a.org", "", false, "1 to 63"},
		{"a..org", "", false, "1 to 63"},
		{strings.Repeat("a.", 126) + "org", "", false, "1 to 253"},
		{"*." + strings.Repeat("a.", 125) + "org", "", false, "1 to 253"}, // 253 without "*.", 255 with
		{"bücher.example", "", false, "punycode"},
	} {
		h, w, err := ParseHost(c.in)
		if c.err == "" {
			if err != nil || h != c.want || w != c.wildcard {
				t.Errorf("ParseHost(%q) = %q, %v, %v; want %q, %v", c.in, h, w, err, c.want, c.wildcard)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrInvalidHost) {
			t.Errorf("ParseHost(%q) = %q, %v; want ErrInvalidHost containing %q", c.in, h, err, c.err)
		}
	}
}

func TestParsePath(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      string // fragment of the error text; "" for success
	}{
		{"/", "/", ""},
		{"/api/", "/api", ""},
		{"/a%20b/v1.2..3", "/a%20b/v1.2..3", ""},
		{"/api/v1/x%2Fy", "/api/v1/x%2Fy", ""},
		{"/a-b_c.d~e!$&'()*+,;=:@", "/a-b_c.d~e!$&'()*+,;=:@", ""},

		{"", "", "want a path starting with /"},
		{"api", "", "want a path starting with /"},
		{"/" + strings.Repeat("a", maxPathLen), "", "longer than 1024 bytes"},
		{"/a b", "", `' ' is not allowed in a path (percent-encode it)`},
		{"/a|b", "", `'|' is not allowed in a path`},
		{"/caf\xc3\xa9", "", "percent-encode"},
		{"/a?b=1", "", "no query or fragment"},
		{"/a#b", "", "no query or fragment"},
		{"/a//b", "", `empty segment ("//")`},
		{"/api//", "", `empty segment ("//")`},
		{"/a%zz", "", "bad percent-encoding"},
		{"/a%2", "", "bad percent-encoding"},
		{"/a/./b", "", `"." and ".." segments are not allowed`},
		{"/a/..", "", `".." segments`},
		{"/a/%2E%2e/b", "", `".." segments`},
	} {
		p, err := ParsePath(c.in)
		if c.err == "" {
			if err != nil || p != c.want {
				t.Errorf("ParsePath(%q) = %q, %v; want %q", c.in, p, err, c.want)
			}
			if err := CheckPath(c.in); err != nil {
				t.Errorf("CheckPath(%q) = %v, want nil", c.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ParsePath(%q) = %q, %v; want ErrInvalidPath containing %q", c.in, p, err, c.err)
		}
		if cerr := CheckPath(c.in); cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("CheckPath(%q) = %v, want ParsePath's error %v", c.in, cerr, err)
		}
	}
}
