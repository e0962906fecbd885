package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestMalformedClientBodyDoesNotEject: a client whose body is malformed gets
// a 400 and its connection closed; the healthy endpoints are not marked, no
// upstream error is counted, and good requests keep working.
func TestMalformedClientBodyDoesNotEject(t *testing.T) {
	a, b := testkit.Backend(t, "a"), testkit.Backend(t, "b")
	reg := prometheus.NewRegistry()
	p := New(Options{Logger: zaptest.NewLogger(t), Registerer: reg, DialTimeout: time.Second})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(a), testkit.Addr(b))}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.NewServer("http", ServerOptions{MaxBodyBytes: 1 << 20})
	go srv.Serve(ln)
	defer srv.Close()

	const head = "POST / HTTP/1.1\r\nHost: app.example.org\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tt := range []struct{ name, body string }{
		{"bad terminator", "5\r\nhelloXX0\r\n\r\n"},
		{"bad chunk size", "zz\r\nhello\r\n0\r\n\r\n"},
		{"chunk size overflow", "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n"},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 8 { // more than MaxFailures per endpoint
				status, closed := sendRaw(t, ln.Addr().String(), head+tt.body)
				if status != "HTTP/1.1 400 Bad Request" {
					t.Fatalf("status %q, want 400", status)
				}
				if !closed {
					t.Fatal("connection kept open after a malformed body")
				}
			}
		})
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "swarmgate_upstream_errors_total" && len(mf.GetMetric()) > 0 {
			t.Errorf("upstream errors counted: %v; the client was at fault", mf.GetMetric())
		}
	}
	for _, rv := range p.Table().Describe(time.Now()) {
		for _, ep := range rv.Endpoints {
			if !ep.Available {
				t.Errorf("endpoint %s marked unavailable by client errors", ep.Addr)
			}
		}
	}
	resp, err := http.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader("fine"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound { // no Host match through http.Post: 404 from the edge itself
		t.Errorf("follow-up request: %d", resp.StatusCode)
	}
}

// sendRaw writes req, reads the response and reports its status line and
// whether the edge closed the connection.
func sendRaw(t *testing.T, addr, req string) (status string, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(req))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp.Proto + " " + resp.Status, err == io.EOF || resp.Close
}
