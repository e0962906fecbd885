package proxy

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// ticketCache is a client session cache that hands every session ticket it
// is given to tickets as well, so that a test knows when the server's
// ticket has come (after the handshake, in its own packets).
type ticketCache struct {
	tls.ClientSessionCache
	tickets chan *tls.ClientSessionState
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.tickets <- cs:
		default:
		}
	}
}

// h3RoundTrip sends req with rt and reads the whole answer.
func h3RoundTrip(t *testing.T, rt http.RoundTripper, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// TestHTTP3No0RTT: a client that resumes its TLS session on a second
// connection and sends its GET as 0-RTT data (quic.DialAddrEarly,
// http3.MethodGet0RTT) has the session resumed but not its early data: the
// server's ticket offers no early data, the connection reports Used0RTT
// false, and the request is answered once, after the handshake, like any
// other (0-RTT data can be replayed, RFC 9001 section 9.2).
func TestHTTP3No0RTT(t *testing.T) {
	web := testkit.Backend(t, "web")
	e := startH3(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web))}}, ServerOptions{})
	cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), tickets: make(chan *tls.ClientSessionState, 4)}
	// client is an HTTP/3 transport that dials with DialAddrEarly (0-RTT
	// whenever the cached ticket allows it) and reports its connection.
	client := func() (*http3.Transport, <-chan *quic.Conn) {
		conns := make(chan *quic.Conn, 1)
		tr := &http3.Transport{
			TLSClientConfig: &tls.Config{RootCAs: e.tr.TLSClientConfig.RootCAs, ClientSessionCache: cache},
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				conn, err := quic.DialAddrEarly(ctx, e.addr, tc, qc)
				if err == nil {
					select {
					case conns <- conn:
					default:
					}
				}
				return conn, err
			},
		}
		t.Cleanup(func() { tr.Close() })
		return tr, conns
	}

	first, conns := client()
	req, _ := http.NewRequest(http.MethodGet, "https://web.example.org/first", nil)
	if resp, b := h3RoundTrip(t, first, req); resp.StatusCode != 200 || b != "web GET /first" {
		t.Fatalf("first connection: %d %q", resp.StatusCode, b)
	}
	conn1 := testkit.Receive(t, conns, time.Second, "the first connection")
	if conn1.ConnectionState().TLS.DidResume {
		t.Fatal("the first connection resumed a session it cannot have had")
	}
	ticket := testkit.Receive(t, cache.tickets, 5*time.Second, "the server's session ticket")
	_, state, err := ticket.ResumptionState()
	if err != nil || state == nil {
		t.Fatalf("the session ticket: state %v, %v", state, err)
	}
	if state.EarlyData {
		t.Error("the server's session ticket allows early data (0-RTT)")
	}
	first.Close()

	second, conns := client()
	req, _ = http.NewRequest(http3.MethodGet0RTT, "https://web.example.org/early", nil)
	resp, b := h3RoundTrip(t, second, req)
	if resp.StatusCode != 200 || b != "web GET /early" {
		t.Fatalf("0-RTT GET: %d %q", resp.StatusCode, b)
	}
	conn2 := testkit.Receive(t, conns, time.Second, "the second connection")
	select {
	case <-conn2.HandshakeComplete():
	default:
		t.Fatal("a response came before the handshake completed")
	}
	cs := conn2.ConnectionState()
	if !cs.TLS.DidResume {
		t.Fatal("the second connection did not resume the session: the test shows nothing of 0-RTT")
	}
	if cs.Used0RTT {
		t.Fatal("the server accepted 0-RTT data on a resumed connection")
	}
}

// TestHTTP3RoutePolicies: a route's policy applies to HTTP/3 requests as to
// TCP ones: basic auth (401 with a challenge, 200 with the right
// credentials, which the task never sees), a rate limit (429 with
// Retry-After once the burst is spent, the task not reached), and an allow
// list, checked against the QUIC peer's address.
func TestHTTP3RoutePolicies(t *testing.T) {
	authed := newSeenBackend(t, []byte("private"))
	limited := newSeenBackend(t, []byte("limited"))
	web := testkit.Backend(t, "web")
	withPolicy := func(service, host, addr string, pol *route.Policy) route.Route {
		r := testkit.Route(service, []string{host}, "/", addr)
		r.Policy = pol
		return r
	}
	cfg := route.Config{Routes: []route.Route{
		withPolicy("auth", "auth.example.org", testkit.Addr(authed.srv), &route.Policy{
			BasicUsers: []route.BasicUser{{Name: "alice", Hash: "$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW"}}, // s3cret
			BasicRealm: "H3",
		}),
		withPolicy("limited", "limited.example.org", testkit.Addr(limited.srv), &route.Policy{
			RateLimit: route.Rate{N: 1, Per: time.Minute, Burst: 2},
		}),
		withPolicy("loopback", "loopback.example.org", testkit.Addr(web), &route.Policy{
			Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		}),
		withPolicy("elsewhere", "elsewhere.example.org", testkit.Addr(web), &route.Policy{
			Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		}),
	}}
	e := startH3(t, cfg, ServerOptions{})
	if rej := e.p.Table().Rejected(); len(rej) != 0 {
		t.Fatalf("routes rejected: %q", rej)
	}

	t.Run("basic auth", func(t *testing.T) {
		resp, _ := e.do(t, "GET", "https://auth.example.org/", nil, nil)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="H3", charset="UTF-8"` {
			t.Errorf("no credentials: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		wrong := http.Header{"Authorization": {"Basic " + basicToken("alice", "wrong")}}
		if resp, _ := e.do(t, "GET", "https://auth.example.org/", nil, wrong); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong password: %d, want 401", resp.StatusCode)
		}
		if n := authed.hits.Load(); n != 0 {
			t.Fatalf("the task was reached %d times without credentials", n)
		}
		right := http.Header{"Authorization": {"Basic " + basicToken("alice", "s3cret")}}
		resp, b := e.do(t, "GET", "https://auth.example.org/", nil, right)
		if resp.StatusCode != 200 || string(b) != "private" || resp.Proto != "HTTP/3.0" {
			t.Fatalf("right password: %d %s %q", resp.StatusCode, resp.Proto, b)
		}
		if n, a := authed.hits.Load(), *authed.auth.Load(); n != 1 || a != "" {
			t.Errorf("the task: %d requests, Authorization %q; want 1 and none", n, a)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		var codes []int
		var last *http.Response
		for range 3 {
			resp, _ := e.do(t, "GET", "https://limited.example.org/", nil, nil)
			codes = append(codes, resp.StatusCode)
			last = resp
		}
		if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
			t.Fatalf("a burst of 2: %v, want [200 200 429]", codes)
		}
		if s, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("429 with Retry-After %q, want 1 to 60 seconds", last.Header.Get("Retry-After"))
		}
		if n := limited.hits.Load(); n != 2 {
			t.Errorf("the task was reached %d times, want 2", n)
		}
	})

	t.Run("allow list", func(t *testing.T) {
		if resp, b := e.do(t, "GET", "https://loopback.example.org/in", nil, nil); resp.StatusCode != 200 || string(b) != "web GET /in" {
			t.Errorf("a loopback client on a route that allows 127.0.0.0/8: %d %q", resp.StatusCode, b)
		}
		if resp, _ := e.do(t, "GET", "https://elsewhere.example.org/in", nil, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a loopback client on a route that allows 192.0.2.0/24 only: %d, want 403", resp.StatusCode)
		}
	})
}

// basicToken is the credentials part of a basic Authorization field.
func basicToken(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// TestHTTP3RetryRefusedConnect: an HTTP/3 GET whose first endpoint refuses
// the connection is retried on the next one and answered 200, as on TCP
// (TestRetryOnRefusedConnect); the metrics count the failed connect and
// the retry.
func TestHTTP3RetryRefusedConnect(t *testing.T) {
	live := testkit.Backend(t, "live")
	dead := testkit.UnusedAddr(t)
	if c, err := net.DialTimeout("tcp", dead, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepts connections", dead)
	}
	// Round robin (testkit.Route's balancer) starts at the first endpoint.
	r := testkit.Route("web", []string{"web.example.org"}, "/", dead, testkit.Addr(live))
	e := startH3(t, route.Config{Routes: []route.Route{r}}, ServerOptions{})
	labels := func(k, v string) map[string]string { return map[string]string{"route": "web", "service": "web", k: v} }

	resp, b := e.do(t, "GET", "https://web.example.org/first", nil, nil)
	if resp.StatusCode != 200 || string(b) != "live GET /first" || resp.Proto != "HTTP/3.0" {
		t.Fatalf("GET with a refusing first endpoint: %d %s %q", resp.StatusCode, resp.Proto, b)
	}
	if got, _ := seriesValue(t, e.reg, "swarmgate_upstream_errors_total", labels("reason", "connect")); got != 1 {
		t.Errorf("connect errors = %v, want 1 (the refused endpoint was tried first)", got)
	}
	if got, _ := seriesValue(t, e.reg, "swarmgate_retries_total", labels("result", "allowed")); got != 1 {
		t.Errorf("retries allowed = %v, want 1", got)
	}
	if got, ok := seriesValue(t, e.reg, "swarmgate_retries_total", labels("result", "denied")); ok && got != 0 {
		t.Errorf("retries denied = %v, want none", got)
	}
	// Later GETs are answered by the live endpoint too, whichever is picked.
	for i := range 4 {
		if resp, b := e.do(t, "GET", "https://web.example.org/more", nil, nil); resp.StatusCode != 200 || string(b) != "live GET /more" {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, b)
		}
	}
}

// TestHTTP3IdleCountsWaitingStreams: a connection is idle for the
// shutdown's closeIdle only when no request is in its handler and no
// request stream waits for its headers (a request sent before the client
// read the GOAWAY, whose handler has not started yet).
func TestHTTP3IdleCountsWaitingStreams(t *testing.T) {
	s := &HTTP3Server{headerTimeout: time.Hour}
	c := s.newConn()
	defer c.finish()
	if !c.idle() {
		t.Fatal("a new connection is not idle")
	}
	c.watchHeaders(4) // the frames of stream 4 came: streams 0 and 4 are open
	if c.idle() {
		t.Fatal("idle with two streams waiting for their headers")
	}
	c.active.Add(1) // stream 0's handler starts...
	c.headersIn(0)
	c.headersIn(4) // ...and stream 4 ends without headers
	if c.idle() {
		t.Fatal("idle with a request in its handler")
	}
	c.active.Add(-1)
	if !c.idle() {
		t.Fatal("not idle once every stream is done")
	}
}
