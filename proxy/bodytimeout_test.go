package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestStalledBodyGets408: a client that stops sending in the middle of its
// body is answered 408 once BodyTimeout passes with nothing, and no task
// saw the request; a client that sends its body slowly but steadily, for
// longer than BodyTimeout in all, is served.
func TestStalledBodyGets408(t *testing.T) {
	var conns atomic.Int64
	b := bodyBackend(t, &conns)
	p := New(Options{Logger: zaptest.NewLogger(t), Registerer: prometheus.NewRegistry(), DialTimeout: time.Second})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	srv := p.NewServer("http", ServerOptions{BodyTimeout: timeout})
	go srv.Serve(ln)
	defer srv.Close()

	send := func(t *testing.T, parts []string, pause time.Duration) *http.Response {
		t.Helper()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 10\r\n\r\n")
		for _, part := range parts {
			io.WriteString(c, part)
			time.Sleep(pause)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	t.Run("stalled", func(t *testing.T) {
		before := conns.Load()
		if resp := send(t, []string{"hello"}, 0); resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
		}
		if n := conns.Load() - before; n != 0 {
			t.Fatalf("%d upstream connections for a request whose body never came", n)
		}
	})
	t.Run("slow but steady", func(t *testing.T) {
		// Ten bytes, one every timeout/3: the body takes over 3x the timeout.
		parts := []string{"h", "e", "l", "l", "o", "w", "o", "r", "l", "d"}
		if resp := send(t, parts, timeout/3); resp.StatusCode != 200 {
			t.Fatalf("steady body: %d, want 200", resp.StatusCode)
		}
	})
}
