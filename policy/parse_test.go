package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// parseCase is one value of a parser's table: want is the result for a
// valid value, err a part of the error for an invalid one.
type parseCase[T any] struct {
	in   string
	want T
	err  string
}

func runParse[T any](t *testing.T, parse func(string) (T, error), equal func(a, b T) bool, cases []parseCase[T]) {
	t.Helper()
	for _, c := range cases {
		got, err := parse(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one containing %q", c.in, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.err == "" && !equal(got, c.want):
			t.Errorf("%q: got %v, want %v", c.in, got, c.want)
		}
	}
}

func eq[T comparable](a, b T) bool { return a == b }

func TestParsePrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	runParse(t, ParsePrefixes, slices.Equal, []parseCase[[]netip.Prefix]{
		{in: "10.0.0.0/8", want: []netip.Prefix{p("10.0.0.0/8")}},
		{in: "10.1.2.3/8, 192.168.1.7", want: []netip.Prefix{p("10.0.0.0/8"), p("192.168.1.7/32")}},
		{in: "2001:db8::/32,::1", want: []netip.Prefix{p("2001:db8::/32"), p("::1/128")}},
		{in: "10.0.0.0/33", err: "want a CIDR"},
		{in: "example.org", err: "want a CIDR"},
		{in: "fe80::1%eth0", err: "want a CIDR"},
		{in: "::ffff:10.0.0.1", err: "IPv4 form"},
		{in: "10.0.0.0/8,", err: "empty address"},
		{in: strings.Repeat("10.0.0.1,", 64) + "10.0.0.1", err: "more than 64"},
	})
}

func TestParseSecretName(t *testing.T) {
	runParse(t, ParseSecretName, eq, []parseCase[string]{
		{in: "shop.htpasswd", want: "shop.htpasswd"},
		{in: "a_b-c", want: "a_b-c"},
		{in: "../etc/passwd", err: "file name"},
		{in: ".hidden", err: "file name"},
		{in: "a/b", err: "file name"},
		{in: "a..b", err: "file name"},
	})
}

func TestParseRealm(t *testing.T) {
	runParse(t, ParseRealm, eq, []parseCase[string]{
		{in: "Shop admin", want: "Shop admin"},
		{in: `say "hi"`, err: "not allowed"},
		{in: "a\tb", err: "not allowed"},
	})
}

func TestParseRate(t *testing.T) {
	runParse(t, ParseRate, eq, []parseCase[route.Rate]{
		{in: "10/s", want: route.Rate{N: 10, Per: time.Second, Burst: 10}},
		{in: "600/m", want: route.Rate{N: 600, Per: time.Minute, Burst: 600}},
		{in: "5 / H", want: route.Rate{N: 5, Per: time.Hour, Burst: 5}},
		{in: "0/s", err: "want N/s"},
		{in: "10", err: "want N/s"},
		{in: "10/d", err: "want N/s"},
		{in: "ten/s", err: "want N/s"},
		{in: "2000000/s", err: "want N/s"},
	})
	runParse(t, ParseBurst, eq, []parseCase[int]{
		{in: "20", want: 20},
		{in: "0", err: "from 1"},
	})
}

func TestParseSize(t *testing.T) {
	runParse(t, ParseSize, eq, []parseCase[int64]{
		{in: "1024", want: 1024},
		{in: "512k", want: 512 << 10},
		{in: "10m", want: 10 << 20},
		{in: "1G", want: 1 << 30},
		{in: "1024g", want: 1 << 40},
		{in: "1025g", err: "want a size"},
		{in: "0", err: "want a size"},
		{in: "m", err: "want a size"},
		{in: "10mb", err: "want a size"},
		{in: "-1k", err: "want a size"},
	})
}

func TestParseHeader(t *testing.T) {
	cases := []struct {
		side, name, value string
		want              route.Header
		err               string
	}{
		{side: Request, name: "x-tenant", value: "shop", want: route.Header{Name: "X-Tenant", Value: "shop"}},
		{side: Response, name: "Server", value: "", want: route.Header{Name: "Server"}},
		{side: Response, name: "Strict-Transport-Security", value: "max-age=60", want: route.Header{Name: "Strict-Transport-Security", Value: "max-age=60"}},
		{side: Response, name: "X-Forwarded-For", value: "a", want: route.Header{Name: "X-Forwarded-For", Value: "a"}},
		{side: Request, name: "X-Forwarded-For", value: "a", err: "set by the edge"},
		{side: Request, name: "Transfer-Encoding", value: "chunked", err: "framing"},
		{side: Response, name: "content-length", value: "1", err: "framing"},
		{side: Response, name: "Connection", value: "close", err: "hop-by-hop"},
		{side: Request, name: "Upgrade", value: "", err: "hop-by-hop"},
		{side: Request, name: "Host", value: "x", err: "routing"},
		{side: Request, name: "X_Tenant", value: "x", err: "token"},
		{side: Request, name: "X Tenant", value: "x", err: "token"},
		{side: Request, name: "", value: "x", err: "field name"},
		{side: Request, name: "X-A", value: "a\nb", err: "control"},
	}
	for _, c := range cases {
		got, err := ParseHeader(c.side, c.name, c.value)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %q=%q: error %v, want %q", c.side, c.name, c.value, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s %q=%q: %v, %v; want %v", c.side, c.name, c.value, got, err, c.want)
		}
	}
}

func TestParseCORS(t *testing.T) {
	runParse(t, ParseOrigins, slices.Equal, []parseCase[[]string]{
		{in: "*", want: []string{"*"}},
		{in: "https://App.example.org, http://localhost:3000", want: []string{"https://app.example.org", "http://localhost:3000"}},
		{in: "app.example.org", err: "scheme://host"},
		{in: "https://app.example.org/", err: "scheme://host"},
		{in: "ftp://app.example.org", err: "scheme://host"},
		{in: "https://a.org:0", err: "scheme://host"},
		{in: "https://a.org:99999", err: "scheme://host"},
		{in: "*, https://a.org", err: "scheme://host"},
	})
	runParse(t, ParseMethods, slices.Equal, []parseCase[[]string]{
		{in: "get, put,DELETE", want: []string{"GET", "PUT", "DELETE"}},
		{in: "GET,,PUT", err: "empty method"},
		{in: "GE T", err: "token"},
	})
	runParse(t, ParseHeaderNames, slices.Equal, []parseCase[[]string]{
		{in: "*", want: []string{"*"}},
		{in: "content-type, x-csrf-token", want: []string{"Content-Type", "X-Csrf-Token"}},
		{in: "a b", err: "token"},
	})
	runParse(t, ParseMaxAge, eq, []parseCase[time.Duration]{
		{in: "600", want: 10 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "0", want: 0},
		{in: "25h", err: "whole seconds"},
		{in: "1.5s", err: "whole seconds"},
		{in: "-1", err: "whole seconds"},
	})
}

func TestParseCompress(t *testing.T) {
	runParse(t, ParseCompress, slices.Equal, []parseCase[[]string]{
		{in: "true", want: []string{Zstd, Brotli, Gzip}},
		{in: "false", want: nil},
		{in: "gzip", want: []string{Gzip}},
		{in: "BR, gzip", want: []string{Brotli, Gzip}},
		{in: "deflate", err: `encoding "deflate"`},
		{in: "gzip,gzip", err: "twice"},
	})
}

func TestNegotiate(t *testing.T) {
	all := []string{Zstd, Brotli, Gzip}
	cases := []struct {
		accept  string
		offered []string
		want    string
	}{
		{"", all, ""},
		{"gzip", all, Gzip},
		{"gzip, br", all, Brotli},             // tie: the edge's order
		{"gzip, br, zstd", all, Zstd},         // tie: the edge's order
		{"gzip;q=1, br;q=0.5", all, Gzip},     // q-values first
		{"zstd;q=0, gzip;q=0.1", all, Gzip},   // q=0 is "not acceptable"
		{"*", all, Zstd},                      // anything
		{"*;q=0.5, br;q=0", all, Zstd},        // * stands for what is not named
		{"gzip;q=0, *;q=0", all, ""},          // nothing
		{"identity", all, ""},                 // not ours
		{"br;q=abc, gzip", all, Gzip},         // malformed q is 0
		{"GZIP", []string{Gzip}, Gzip},        // case-insensitive
		{"zstd, br", []string{Gzip}, ""},      // nothing offered fits
		{"br;q=0.9, gzip;q=0.9", all, Brotli}, // tie again
	}
	for _, c := range cases {
		var accept []string
		if c.accept != "" {
			accept = []string{c.accept}
		}
		if got := negotiate(accept, c.offered); got != c.want {
			t.Errorf("Accept-Encoding %q offered %v: got %q, want %q", c.accept, c.offered, got, c.want)
		}
	}
}

func TestParseErrorPage(t *testing.T) {
	runParse(t, ParseErrorPage, eq, []parseCase[string]{
		{in: "errors.html", want: "errors.html"},
		{in: "Shop-502.HTML", want: "Shop-502.HTML"},
		{in: ".html", err: "file name"},
		{in: "errors.htm", err: "an .html file"},
		{in: "shop.key", err: "an .html file"},
		{in: "../errors.html", err: "file name"},
	})
}

func TestParseMatch(t *testing.T) {
	runParse(t, ParseMatchHeader, eq, []parseCase[route.Match]{
		{in: "X-Canary=1", want: route.Match{Name: "X-Canary", Value: "1"}},
		{in: " x-canary = on ", want: route.Match{Name: "X-Canary", Value: "on"}},
		{in: "X-Group=a=b", want: route.Match{Name: "X-Group", Value: "a=b"}},
		{in: "X-Canary", err: "want Name=value"},
		{in: "X-Canary=", err: "want Name=value"},
		{in: "=1", err: "want Name=value"},
		{in: "X_Canary=1", err: "without '_'"},
		{in: "Host=a.org", err: "routing field"},
		{in: "X-A=\x01", err: "control characters"},
	})
	runParse(t, ParseMatchCookie, eq, []parseCase[route.Match]{
		{in: "canary=1", want: route.Match{Name: "canary", Value: "1"}},
		{in: "beta = yes", want: route.Match{Name: "beta", Value: "yes"}},
		{in: "beta", err: "want name=value"},
		{in: "be;ta=1", err: "RFC 6265 token"},
		{in: "beta=a;b", err: "cookie octets"},
		{in: `beta="x"`, err: "cookie octets"},
	})
}
