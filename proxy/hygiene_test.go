package proxy

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// seen is what a recording backend received.
type seen struct {
	header, trailer http.Header
	path            string
}

// recorder is a backend that reports every request's header, trailer and
// path, and answers 200 (or 101 to any upgrade request, to prove none
// arrives).
func recorder(t *testing.T) (*httptest.Server, chan seen) {
	t.Helper()
	got := make(chan seen, 8)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1024)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		got <- seen{header: r.Header.Clone(), trailer: r.Trailer.Clone(), path: r.URL.Path}
		if r.Header.Get("Upgrade") != "" {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", r.Header.Get("Upgrade"))
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(b.Close)
	return b, got
}

// rawExchange sends raw request bytes to the edge and returns the status line.
func rawExchange(t testing.TB, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestRequestHeaderHygiene: what a client sends cannot pose as what the edge
// or a trusted proxy says (issue vectors as raw bytes through a listener).
func TestRequestHeaderHygiene(t *testing.T) {
	b, got := recorder(t)
	strip := testkit.Route("strip", []string{"strip.example.org"}, "/app", testkit.Addr(b))
	strip.Strip = true
	cfg := route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b)), strip}}
	untrusted := startEdge(t, cfg)
	trusted := startEdgeWith(t, cfg, Options{DialTimeout: time.Second, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})

	const spoof = "Forwarded: for=198.51.100.1\r\nX-Real-IP: 198.51.100.1\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Prefix: /admin\r\n"
	for _, tt := range []struct {
		name string
		edge *edge
		req  string
		want map[string]string // upstream header -> value ("" is absent)
		path string            // upstream path; "" is not checked
		// trailers the upstream may see; nil is none
		trailer map[string]string
	}{
		{name: "declared trailer is not forwarded", edge: untrusted,
			req: "POST / HTTP/1.1\r\nHost: app.example.org\r\nTransfer-Encoding: chunked\r\nTrailer: X-Forwarded-For\r\n\r\n" +
				"5\r\nhello\r\n0\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n",
			want: map[string]string{"X-Forwarded-For": "127.0.0.1", "Trailer": ""}},
		{name: "underscore names are dropped", edge: untrusted,
			req:  "GET / HTTP/1.1\r\nHost: app.example.org\r\nX_Forwarded_For: 198.51.100.1\r\nX_Custom: 1\r\n\r\n",
			want: map[string]string{"X_forwarded_for": "", "X_custom": "", "X-Forwarded-For": "127.0.0.1"}},
		{name: "Connection cannot strip the forwarding headers", edge: untrusted,
			req:  "GET / HTTP/1.1\r\nHost: app.example.org\r\nConnection: X-Request-Id, X-Forwarded-For, X-Forwarded-Proto, X-Real-IP\r\nX-Request-Id: req-1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
			want: map[string]string{"X-Request-Id": "req-1", "X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "http", "X-Real-Ip": "127.0.0.1"}},
		{name: "h2c upgrade is not forwarded", edge: untrusted,
			req:  "GET / HTTP/1.1\r\nHost: app.example.org\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
			want: map[string]string{"Upgrade": "", "Http2-Settings": "", "Connection": ""}},
		{name: "an untrusted client's forwarding claims are replaced", edge: untrusted,
			req:  "GET / HTTP/1.1\r\nHost: app.example.org\r\n" + spoof + "\r\n",
			want: map[string]string{"Forwarded": "", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Port": portOf(untrusted.addr), "X-Forwarded-Prefix": ""}},
		{name: "a trusted proxy's forwarding claims are kept", edge: trusted,
			req:  "GET / HTTP/1.1\r\nHost: app.example.org\r\n" + spoof + "\r\n",
			want: map[string]string{"Forwarded": "for=198.51.100.1", "X-Real-Ip": "198.51.100.1", "X-Forwarded-Port": "1", "X-Forwarded-Prefix": "/admin"}},
		{name: "a stripped prefix is told in X-Forwarded-Prefix", edge: untrusted,
			req:  "GET /app/x HTTP/1.1\r\nHost: strip.example.org\r\n" + spoof + "\r\n",
			want: map[string]string{"X-Forwarded-Prefix": "/app"}, path: "/x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status := rawExchange(t, tt.edge.addr, tt.req); status != "HTTP/1.1 200 OK" {
				t.Fatalf("status %q, want 200", status)
			}
			s := <-got
			for k, want := range tt.want {
				if v := s.header.Get(k); v != want {
					t.Errorf("upstream %s = %q, want %q", k, v, want)
				}
			}
			if len(s.trailer) != 0 {
				t.Errorf("upstream trailers %v, want none", s.trailer)
			}
			if tt.path != "" && s.path != tt.path {
				t.Errorf("upstream path %q, want %q", s.path, tt.path)
			}
		})
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
