package socketproxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// denyCase is a request, written byte for byte, that must never reach the
// Docker Engine.
type denyCase struct {
	name string
	raw  string
	// byServer marks requests that net/http itself refuses before the
	// handler runs (malformed framing, oversized headers): any 4xx, or a
	// closed connection, is right. All others must get our 403.
	byServer bool
}

// get builds "METHOD target HTTP/1.1" with a Host header and extra header
// lines.
func get(method, target string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: docker\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// denyCases lists requests that must be denied: every forbidden endpoint
// with and without the version prefix, encoded and dotted variants, other
// methods on allowed paths, bodies, upgrades, and non-origin-form targets.
func denyCases() []denyCase {
	var cs []denyCase
	forbidden := []string{
		"/swarm", "/swarm/unlockkey", "/secrets", "/secrets/abc", "/configs", "/configs/abc",
		"/containers/json", "/containers/abc/json", "/exec/abc/json", "/images/json",
		"/session", "/grpc", "/distribution/alpine/json", "/plugins", "/build", "/volumes",
		"/info", "/system/df", "/tasks/abc", "/tasks/abc/logs", "/services/abc/logs", "/nodes/abc",
		"/auth", "/_ping/x", "/", "/services/abc/update",
	}
	for _, p := range forbidden {
		cs = append(cs,
			denyCase{name: "GET " + p, raw: get("GET", p)},
			denyCase{name: "GET /v1.41" + p, raw: get("GET", "/v1.41"+p)})
	}
	for _, target := range []string{
		"/v1.41/services/../secrets",
		"/services/../secrets",
		"/services/%2e%2e/secrets",
		"/services/%2E%2E/secrets",
		"/services/.%2e/secrets",
		"/v1.41/services/%2e%2e/%2e%2e/v1.41/secrets",
		"//secrets",
		"/v1.41//secrets",
		"/./secrets",
		"/services%2F..%2Fsecrets",
		"/services%2fsecrets",
		"/v1.41/services/..%2fsecrets",
		"/services/%252e%252e/secrets",
		"/services/abc%00",
		"/services/abc%5c..%5csecrets",
		`/services\..\secrets`,
		"/%73ecrets",
		"/v1.41/%73wa%72m",
		"/services/x/../../../secrets",
		"/../services",
		"/services;/secrets",
		"/services/abc;x=1",
		"/services#/../secrets",
		"/sérvices",
		"/v1.41/services/%C0%AE%C0%AE/secrets",
		"/services?filters=%zz",
		"/services?a=1;b=2",
		"/services?" + strings.Repeat("a", DefaultMaxQuery+1),
		"/v1/services",
		"/v1.41.0/services",
		"/V1.41/services",
		"/v1.41/v1.41/services",
		"/Services",
	} {
		cs = append(cs, denyCase{name: "GET " + target, raw: get("GET", target)})
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"} {
		cs = append(cs,
			denyCase{name: m + " /services", raw: get(m, "/services")},
			denyCase{name: m + " /v1.41/networks/abc", raw: get(m, "/v1.41/networks/abc")})
	}
	cs = append(cs,
		denyCase{name: "POST /services/create", raw: get("POST", "/v1.41/services/create", "Content-Length: 2", "Content-Type: application/json") + "{}"},
		denyCase{name: "POST /networks/create", raw: get("POST", "/networks/create")},
		denyCase{name: "POST /nodes/abc/update", raw: get("POST", "/nodes/abc/update")},
		denyCase{name: "DELETE /services/abc", raw: get("DELETE", "/services/abc")},
		denyCase{name: "HEAD /services", raw: get("HEAD", "/services")},
		denyCase{name: "HEAD /v1.41/events", raw: get("HEAD", "/v1.41/events")},
		denyCase{name: "HEAD /secrets", raw: get("HEAD", "/secrets")},
		denyCase{name: "OPTIONS *", raw: get("OPTIONS", "*")},
		denyCase{name: "GET with Content-Length body", raw: get("GET", "/services", "Content-Length: 5") + "hello"},
		denyCase{name: "GET with smuggled request in body", raw: get("GET", "/_ping", "Content-Length: 37") + "GET /secrets HTTP/1.1\r\nHost: docker\r\n\r\n"},
		denyCase{name: "GET with chunked body", raw: get("GET", "/v1.41/services", "Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\n\r\n"},
		denyCase{name: "GET chunked and Content-Length", raw: get("GET", "/services", "Transfer-Encoding: chunked", "Content-Length: 5") + "0\r\n\r\n", byServer: true},
		denyCase{name: "GET with Upgrade websocket", raw: get("GET", "/events", "Connection: Upgrade", "Upgrade: websocket")},
		denyCase{name: "GET with Upgrade tcp", raw: get("GET", "/v1.41/_ping", "Connection: Upgrade", "Upgrade: tcp")},
		denyCase{name: "GET with Connection upgrade only", raw: get("GET", "/services", "Connection: keep-alive, Upgrade")},
		denyCase{name: "GET with Upgrade only", raw: get("GET", "/services", "Upgrade: h2c")},
		denyCase{name: "GET h2c upgrade", raw: get("GET", "/services", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA")},
		denyCase{name: "absolute-form GET", raw: get("GET", "http://docker/services")},
		denyCase{name: "absolute-form GET with version", raw: get("GET", "http://docker/v1.41/services")},
		denyCase{name: "absolute-form to another host", raw: get("GET", "http://127.0.0.1:2375/v1.41/_ping")},
		denyCase{name: "authority-form CONNECT", raw: get("CONNECT", "docker:2375")},
		denyCase{name: "CONNECT with path", raw: get("CONNECT", "/services")},
		denyCase{name: "HTTP/2 preface", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", byServer: true},
		denyCase{name: "oversized header", raw: get("GET", "/services", "X-Big: "+strings.Repeat("a", 32<<10)), byServer: true},
		denyCase{name: "no Host on HTTP/1.1", raw: "GET /services HTTP/1.1\r\n\r\n", byServer: true},
		denyCase{name: "space in target", raw: "GET /services /secrets HTTP/1.1\r\nHost: docker\r\n\r\n", byServer: true},
	)
	return cs
}

// checkDenied asserts that res is the right refusal for c.
func checkDenied(t *testing.T, c denyCase, res rawResult) {
	t.Helper()
	if c.byServer {
		if res.status != 0 && (res.status < 400 || res.status > 599) {
			t.Errorf("%s: status %d, want a 4xx/5xx refusal or a closed connection", c.name, res.status)
		}
		return
	}
	if res.status != http.StatusForbidden {
		t.Errorf("%s: status %d, want 403", c.name, res.status)
		return
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", c.name, ct)
	}
	if strings.HasPrefix(c.raw, "HEAD ") {
		return // no body by definition
	}
	var body struct{ Message string }
	if err := json.Unmarshal([]byte(res.body), &body); err != nil || !strings.Contains(body.Message, "forbidden") {
		t.Errorf("%s: body %q is not a Docker error", c.name, res.body)
	}
}

// TestDenyFakeUpstream runs the deny table against a local upstream that
// counts every request; the real Engine runs the same table in
// TestEngineAllowList.
func TestDenyFakeUpstream(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer up.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL)}, nil)
	cases := denyCases()
	if len(cases) < 60 {
		t.Fatalf("only %d deny cases", len(cases))
	}
	for _, c := range cases {
		checkDenied(t, c, rawRequest(t, tp.addr, c.raw, false))
		if n := hits.Load(); n != 0 {
			t.Fatalf("%s: reached the upstream (%d requests)", c.name, n)
		}
	}
}

func TestAllowFrom(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer up.Close()
	for _, tt := range []struct {
		allow string
		want  int
	}{
		{"", http.StatusOK},
		{"127.0.0.0/8", http.StatusOK},
		{"10.0.0.0/8, 192.168.1.7", http.StatusForbidden},
		{"::1/128", http.StatusForbidden},
	} {
		allow, err := ParseAllowFrom(tt.allow)
		if err != nil {
			t.Fatal(err)
		}
		tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL), AllowFrom: allow}, nil)
		before := hits.Load()
		res := rawRequest(t, tp.addr, get("GET", "/_ping"), false)
		if res.status != tt.want {
			t.Errorf("allow-from %q: status %d, want %d", tt.allow, res.status, tt.want)
		}
		if reached := hits.Load() != before; reached != (tt.want == http.StatusOK) {
			t.Errorf("allow-from %q: reached upstream = %v", tt.allow, reached)
		}
	}
	if _, err := ParseAllowFrom("10.0.0.0/33"); err == nil {
		t.Error("ParseAllowFrom accepted /33")
	}
}
