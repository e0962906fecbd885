package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestClockReadsPerRequest: a request proxied through the own HTTP/1.1
// loop and transport on a keep-alive connection reads the proxy's clock
// (which the endpoint pool shares) three times: at its start, as it goes
// upstream and at the response's end. Those readings serve the pick, the
// endpoint's release, the access log and the upstream connection's
// deadline and idle time; a counting clock that wraps time.Now is taken
// for the system's, as time.Now is.
func TestClockReadsPerRequest(t *testing.T) {
	var reads atomic.Int64
	clock := func() time.Time { reads.Add(1); return time.Now() }
	backend := testkit.Backend(t, "b")
	p := New(Options{Now: clock, Registerer: prometheus.NewRegistry(), DialTimeout: time.Second})
	p.Update(route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(backend))}})
	s := p.NewServer("http", ServerOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		p.Close()
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	get := func() {
		t.Helper()
		if _, err := io.WriteString(c, "GET /clock HTTP/1.1\r\nHost: app.example.org\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	get() // the upstream connection is dialed, then pooled
	const n = 50
	before := reads.Load()
	for range n {
		get()
	}
	if got := float64(reads.Load()-before) / n; got != 3 {
		t.Errorf("%.2f clock reads per request, want 3 (start, upstream, end)", got)
	}
}
