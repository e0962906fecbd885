package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

type addrConn struct {
	net.Conn
	local net.Addr
}

func (c addrConn) LocalAddr() net.Addr { return c.local }

type otherKey struct{}

// TestConnContexts: the HTTP/2 connections' context answers the local port
// and the guard from one value, the own loop's the port alone, both pass
// other keys to their parent and live under a cancelable child; each is
// at most two allocations (the context and the port's string), where the
// two context.WithValue layers and the guard were four.
func TestConnContexts(t *testing.T) {
	c := addrConn{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}}
	base := context.WithValue(context.Background(), otherKey{}, "parent's")
	g := withConnGuard(base, c)
	p := withLocalPort(base, c)
	for _, tt := range []struct {
		name  string
		ctx   context.Context
		guard bool
	}{{"withConnGuard", g, true}, {"withLocalPort", p, false}} {
		ctx, cancel := context.WithCancel(tt.ctx)
		if port, _ := ctx.Value(localPortKey{}).(string); port != "8443" {
			t.Errorf("%s: local port %q, want 8443", tt.name, port)
		}
		if v := ctx.Value(otherKey{}); v != "parent's" {
			t.Errorf("%s: the parent's value: %v", tt.name, v)
		}
		if gd := guardOf(ctx); (gd != nil) != tt.guard || tt.guard && (gd != guardOf(ctx) || gd.conn != c) {
			t.Errorf("%s: guard %p, want one: %v", tt.name, gd, tt.guard)
		}
		cancel()
		if ctx.Err() == nil || tt.ctx.Err() != nil {
			t.Errorf("%s: cancel: child %v, connection %v", tt.name, ctx.Err(), tt.ctx.Err())
		}
	}
	// On a usual port (its string is a constant).
	var usual net.Conn = addrConn{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}}
	twoLayers := testing.AllocsPerRun(100, func() {
		ctx := context.WithValue(base, connGuardKey{}, &connGuard{conn: usual})
		_ = context.WithValue(ctx, localPortKey{}, addrPort(usual.LocalAddr()))
	})
	if n := testing.AllocsPerRun(100, func() { withConnGuard(base, usual) }); n > 2 || n >= twoLayers {
		t.Errorf("withConnGuard: %v allocations, want at most 2 (two WithValue layers and a guard: %v)", n, twoLayers)
	}
	if n := testing.AllocsPerRun(100, func() { withLocalPort(base, usual) }); n > 2 {
		t.Errorf("withLocalPort: %v allocations, want at most 2", n)
	}
}

func guardsHeld(s *Server) int {
	n := 0
	s.guards.Range(func(_, _ any) bool { n++; return true })
	return n
}

// TestGuardsOnlyForHTTP2: with the own loop an HTTP/1 keep-alive
// connection holds no entry in Server.guards (and still gets its
// X-Forwarded-Port); a cleartext HTTP/2 connection holds one while it is
// open, dropped when it closes.
func TestGuardsOnlyForHTTP2(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Port"))
	}))
	defer b.Close()
	e := startEdgeWith(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}},
		Options{DialTimeout: time.Second})
	_, port, _ := net.SplitHostPort(e.addr)

	c, err := net.DialTimeout("tcp", e.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example.org\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != port {
			t.Fatalf("HTTP/1: X-Forwarded-Port %q, want %s", body, port)
		}
	}
	if n := guardsHeld(e.srv); n != 0 {
		t.Fatalf("an open HTTP/1 keep-alive connection holds %d guards entries, want 0", n)
	}

	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	req, _ := http.NewRequest("GET", "http://"+e.addr+"/", nil)
	req.Host = "app.example.org"
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != port {
		t.Fatalf("h2c: %s, X-Forwarded-Port %q, want HTTP/2 and %s", resp.Proto, body, port)
	}
	if n := guardsHeld(e.srv); n != 1 {
		t.Fatalf("an open h2c connection (and an HTTP/1 one) hold %d guards entries, want 1", n)
	}
	tr.CloseIdleConnections()
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := guardsHeld(e.srv); n != 0 {
			return fmt.Errorf("%d guards entries after the h2c connection closed", n)
		}
		return nil
	})
	if errors.Is(c.SetDeadline(time.Time{}), net.ErrClosed) {
		t.Fatal("the HTTP/1 connection closed")
	}
}
