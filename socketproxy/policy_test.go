package socketproxy

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"/", "/", nil},
		{"/services", "/services", nil},
		{"/services/", "/services", nil},
		{"//services", "/services", nil},
		{"/v1.41//services///abc", "/v1.41/services/abc", nil},
		{"/./services/.", "/services", nil},
		{"/services/x/../../tasks", "/tasks", nil},
		{"/v1.41/services/../secrets", "/v1.41/secrets", nil},
		{"/%73ervices", "/services", nil},
		{"/services/a%2Eb", "/services/a.b", nil},
		{"/services/%7e", "/services/~", nil},
		{"/services/...", "/services/...", nil},
		{"services", "", ErrNotOriginForm},
		{"", "", ErrNotOriginForm},
		{"*", "", ErrNotOriginForm},
		{"http://x/services", "", ErrNotOriginForm},
		{"/..", "", ErrAboveRoot},
		{"/services/../..", "", ErrAboveRoot},
		{"/services/%2e%2e/secrets", "", ErrDotSegment},
		{"/services/.%2E/secrets", "", ErrDotSegment},
		{"/services/%2e/secrets", "", ErrDotSegment},
		{"/services/%2e%2e%2e", "", ErrDotSegment},
		{"/services%2F..%2Fsecrets", "", ErrEscape},
		{"/services%2fsecrets", "", ErrEscape},
		{"/services/%5c", "", ErrEscape},
		{"/services/%00", "", ErrEscape},
		{"/services/%25", "", ErrEscape},
		{"/services/%", "", ErrEscape},
		{"/services/%2", "", ErrEscape},
		{"/services/%zz", "", ErrEscape},
		{"/services/%C3%A9", "", ErrEscape},
		{"/services\\..\\secrets", "", ErrPathByte},
		{"/services/x\x00", "", ErrPathByte},
		{"/services/a b", "", ErrPathByte},
		{"/services;x=1", "", ErrPathByte},
		{"/services#frag", "", ErrPathByte},
		{"/sérvices", "", ErrPathByte},
		{"/" + strings.Repeat("a", maxPathBytes), "", ErrPathTooLong},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		method, path string
		want         Endpoint
		ok           bool
	}{
		{"GET", "/_ping", EndpointPing, true},
		{"HEAD", "/_ping", EndpointPing, true},
		{"HEAD", "/v1.41/_ping", EndpointPing, true},
		{"GET", "/version", EndpointVersion, true},
		{"GET", "/v1.41/services", EndpointServices, true},
		{"GET", "/services/abc123", EndpointService, true},
		{"GET", "/v1.24/services/web_app.1-x", EndpointService, true},
		{"GET", "/tasks", EndpointTasks, true},
		{"GET", "/networks", EndpointNetworks, true},
		{"GET", "/networks/ingress", EndpointNetwork, true},
		{"GET", "/nodes", EndpointNodes, true},
		{"GET", "/v1.41/events", EndpointEvents, true},
		{"HEAD", "/services", EndpointServices, false},
		{"POST", "/services", EndpointServices, false},
		{"DELETE", "/services/x", EndpointService, false},
		{"OPTIONS", "/_ping", EndpointPing, false},
		{"get", "/services", EndpointServices, false},
		{"GET", "/services/x/logs", EndpointOther, false},
		{"GET", "/services/.hidden", EndpointOther, false},
		{"GET", "/services/-x", EndpointOther, false},
		{"GET", "/tasks/x", EndpointOther, false},
		{"GET", "/nodes/x", EndpointOther, false},
		{"GET", "/secrets", EndpointOther, false},
		{"GET", "/v1.41/secrets", EndpointOther, false},
		{"GET", "/swarm", EndpointOther, false},
		{"GET", "/info", EndpointOther, false},
		{"GET", "/containers/json", EndpointOther, false},
		{"GET", "/v1.41", EndpointOther, false},
		{"GET", "/", EndpointOther, false},
		{"GET", "/v1/services", EndpointOther, false},
		{"GET", "/v1.41.1/services", EndpointOther, false},
		{"GET", "/v1.41/v1.41/services", EndpointOther, false},
		{"GET", "/V1.41/services", EndpointOther, false},
		{"GET", "/Services", EndpointOther, false},
		{"GET", "/services/" + strings.Repeat("a", maxIDBytes+1), EndpointOther, false},
	}
	for _, tt := range tests {
		got, ok := Match(tt.method, tt.path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Match(%s %s) = %s, %v; want %s, %v", tt.method, tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckQuery(t *testing.T) {
	tests := []struct {
		q   string
		err error
	}{
		{"", nil},
		{"filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D", nil},
		{`filters={"type":["service"]}`, nil},
		{"a=1&b=2", nil},
		{"a=1;b=2", ErrQuery},
		{"a=%zz", ErrQuery},
		{"a=1#x", ErrQuery},
		{"a=\x00", ErrQuery},
		{"a=\x7f", ErrQuery},
		{"a=é", ErrQuery},
		{"a=" + strings.Repeat("x", DefaultMaxQuery), ErrQueryTooLong},
	}
	for _, tt := range tests {
		if err := CheckQuery(tt.q, DefaultMaxQuery); !errors.Is(err, tt.err) {
			t.Errorf("CheckQuery(%.40q) = %v; want %v", tt.q, err, tt.err)
		}
	}
}

// allowedPath is an oracle written independently of route: the anchored
// allow-list as one regular expression.
var allowedPath = regexp.MustCompile(`^(/v[0-9]{1,3}\.[0-9]{1,3})?/(_ping|version|services|tasks|networks|nodes|events|services/[A-Za-z0-9][A-Za-z0-9_.-]*|networks/[A-Za-z0-9][A-Za-z0-9_.-]*)$`)

// canonical reports whether p is in the form Normalize produces.
func canonical(p string) bool {
	if p == "/" {
		return true
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, "%") {
		return false
	}
	for _, s := range strings.Split(p[1:], "/") {
		if s == "." || s == ".." {
			return false
		}
	}
	return true
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/services", "//x/./y/../z/", "/%2e%2e/", "/a%2Fb", "/v1.41/services/../secrets", "/%73ervices", "/..", "/a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			return
		}
		if !canonical(out) {
			t.Fatalf("Normalize(%q) = %q: not canonical", in, out)
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: Normalize(%q) = %q; Normalize(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

func FuzzAllow(f *testing.F) {
	for _, s := range []string{"/services", "/v1.41/services/x", "/services/%2e%2e/secrets", "//secrets", "/services%2F..%2Fsecrets", "/v1.41/events?filters=x", "http://x/services", "*"} {
		f.Add("GET", s)
		f.Add("HEAD", s)
	}
	f.Add("POST", "/services/create")
	f.Fuzz(func(t *testing.T, method, target string) {
		r := &http.Request{Method: method, RequestURI: target, ProtoMajor: 1, Header: http.Header{}}
		d := decide(r, DefaultMaxQuery)
		if d.reason != "" {
			return
		}
		rawPath, _, _ := strings.Cut(target, "?")
		norm, err := Normalize(rawPath)
		if err != nil || norm != d.path {
			t.Fatalf("allowed %s %q with path %q; Normalize says %q, %v", method, target, d.path, norm, err)
		}
		if !allowedPath.MatchString(d.path) || len(d.path) > maxPathBytes {
			t.Fatalf("allowed %s %q: normalised path %q is not on the allow-list", method, target, d.path)
		}
		if method != "GET" && !(method == "HEAD" && d.endpoint == EndpointPing) {
			t.Fatalf("allowed method %q on %q", method, d.path)
		}
		if strings.ContainsAny(d.path, "%\\") {
			t.Fatalf("forwarded path %q keeps an escape or backslash", d.path)
		}
	})
}
