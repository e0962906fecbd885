package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestEdgeStdlibHTTP1: --stdlib-http1 (default false) picks net/http's
// HTTP/1 server over the edge's own loop. The two tell apart on a request
// with Content-Length beside Transfer-Encoding: the own loop refuses it
// (400), net/http's reads it by the chunked coding (200); both close.
func TestEdgeStdlibHTTP1(t *testing.T) {
	cmd := newEdgeCmd(&logOptions{})
	if f := cmd.Flags().Lookup("stdlib-http1"); f == nil || f.DefValue != "false" {
		t.Fatalf("--stdlib-http1: %v, want a flag with default false", f)
	}
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeRoutes(t, routes, testkit.Addr(testkit.Backend(t, "web")), "app.example.org")
	for _, tt := range []struct {
		stdlib bool
		want   int
	}{{false, http.StatusBadRequest}, {true, http.StatusOK}} {
		t.Run(fmt.Sprint("stdlib=", tt.stdlib), func(t *testing.T) {
			o := edgeOptions{
				httpAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t), routes: routes, routesPoll: time.Second,
				drainTimeout: 2 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
				stdlibHTTP1: tt.stdlib,
			}
			startEdge(t, o)
			waitReady(t, o.adminAddr)
			c, err := net.DialTimeout("tcp", o.httpAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want || !resp.Close {
				t.Fatalf("status %d, close %v; want %d and close", resp.StatusCode, resp.Close, tt.want)
			}
		})
	}
}

// TestEdgeProxyProtocolOwnLoop: behind a load balancer that sends a PROXY
// header (--proxy-protocol-from), the own HTTP/1 loop serves the request
// that follows it, pipelined in the same packet, with the client address
// the header names.
func TestEdgeProxyProtocolOwnLoop(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	defer b.Close()
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeRoutes(t, routes, testkit.Addr(b), "app.example.org")
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t), routes: routes, routesPoll: time.Second,
		drainTimeout: 2 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
	}
	o.proxyFrom = "127.0.0.0/8"
	startEdge(t, o)
	waitReady(t, o.adminAddr)
	c, err := net.DialTimeout("tcp", o.httpAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n"+
		"GET /one HTTP/1.1\r\nHost: app.example.org\r\n\r\nGET /two HTTP/1.1\r\nHost: app.example.org\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/one 203.0.113.7", "/two 203.0.113.7"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
}
