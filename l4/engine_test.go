package l4

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an engine on loopback with its own registry and endpoint pool.
type harness struct {
	t    *testing.T
	e    *Engine
	reg  *prometheus.Registry
	pool *balancer.Pool
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Logger = zaptest.NewLogger(t)
	o.Registerer = reg
	o.ListenHost = "127.0.0.1"
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	h := &harness{t: t, e: New(o), reg: reg, pool: balancer.NewPool(balancer.PoolOptions{})}
	t.Cleanup(func() {
		h.e.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		h.e.Drain(ctx)
	})
	return h
}

// route builds a round-robin route over addrs.
func (h *harness) route(id string, addrs ...string) *Route {
	p, err := balancer.New("round-robin")
	if err != nil {
		h.t.Fatal(err)
	}
	r := &Route{ID: id, Service: id, Policy: p}
	for _, a := range addrs {
		r.Endpoints = append(r.Endpoints, h.pool.Endpoint(a))
	}
	return r
}

// tcpRoute routes an ephemeral port (table key 0) to r and returns the
// address clients dial.
func (h *harness) tcpRoute(r *Route) string {
	h.t.Helper()
	if err := h.e.Update(&Table{TCP: map[int]*Route{0: r}}); err != nil {
		h.t.Fatal(err)
	}
	return h.e.Addr(0).String()
}

// serve runs handle for every connection to a new loopback listener until
// the test ends, and returns its address.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echo answers each line with prefix + the line.
func echo(prefix string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, prefix+line); err != nil {
				return
			}
		}
	}
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// expectClosed waits for the proxy to close c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open: read %d, %v", n, err)
	}
}

func TestTCPRouteTransfer1GB(t *testing.T) {
	const total = 1 << 30
	h := newHarness(t, Options{})
	// The backend hashes what it receives and answers with the digest
	// after the client's half-close.
	addr := h.tcpRoute(h.route("bulk", serve(t, func(c net.Conn) {
		sum := sha256.New()
		n, err := io.Copy(sum, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d %x\n", n, sum.Sum(nil))
	})))

	block := make([]byte, 1<<20)
	rand.Read(block)
	want := sha256.New()
	for range total / len(block) {
		want.Write(block)
	}
	c, r := dial(t, addr)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	for range total / len(block) {
		if _, err := c.Write(block); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	line, err := r.ReadString('\n')
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("reading digest: %v", err)
	}
	if got, exp := strings.TrimSpace(line), fmt.Sprintf("%d %x", total, want.Sum(nil)); got != exp {
		t.Fatalf("backend got %q, want %q", got, exp)
	}
	t.Logf("1 GiB through the TCP route in %v: %.2f Gbit/s (backend hashing included)",
		elapsed.Round(time.Millisecond), float64(total)*8/elapsed.Seconds()/1e9)
	expectClosed(t, c)
	if got := testkit.MetricValue(t, h.e.metrics.bytes.WithLabelValues("bulk", "in")); got != total {
		t.Errorf("bytes in = %v, want %d", got, total)
	}
}

func TestIdleConnectionSurvivesTableSwap(t *testing.T) {
	h := newHarness(t, Options{})
	a := serve(t, echo("a:"))
	b := serve(t, echo("b:"))
	addr := h.tcpRoute(h.route("pg", a))
	c, r := dial(t, addr)
	if got := roundTrip(t, c, r, "hello"); got != "a:hello" {
		t.Fatalf("got %q", got)
	}

	// Same port, a fresh Route value: the listener and the conn stay.
	if err := h.e.Update(&Table{TCP: map[int]*Route{0: h.route("pg", a)}}); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, r, "after same-table swap"); got != "a:after same-table swap" {
		t.Fatalf("got %q", got)
	}
	if h.e.Addr(0).String() != addr {
		t.Fatalf("listener moved from %s to %s", addr, h.e.Addr(0))
	}

	// Same port, new endpoints: new connections go to b, the idle one
	// stays spliced to a.
	if err := h.e.Update(&Table{TCP: map[int]*Route{0: h.route("pg", b)}}); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, r, "still here"); got != "a:still here" {
		t.Fatalf("established conn: got %q", got)
	}
	c2, r2 := dial(t, addr)
	if got := roundTrip(t, c2, r2, "new"); got != "b:new" {
		t.Fatalf("new conn: got %q", got)
	}

	// Port no longer routed: it stops accepting, established conns stay.
	if err := h.e.Update(&Table{}); err != nil {
		t.Fatal(err)
	}
	if c3, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c3.Close()
		t.Fatalf("removed port %s still accepts", addr)
	}
	if got := roundTrip(t, c, r, "port gone"); got != "a:port gone" {
		t.Fatalf("established conn after port removal: got %q", got)
	}
	if got := testkit.MetricValue(t, h.e.metrics.open.WithLabelValues("pg")); got != 2 {
		t.Errorf("open connections = %v, want 2", got)
	}
}

func TestHalfClose(t *testing.T) {
	h := newHarness(t, Options{})
	// The backend reads the whole request, then sends its answer in
	// several writes after the client has stopped sending.
	addr := h.tcpRoute(h.route("half", serve(t, func(c net.Conn) {
		req, err := io.ReadAll(c)
		if err != nil {
			return
		}
		for i := range 3 {
			fmt.Fprintf(c, "part %d of reply to %q\n", i, req)
		}
	})))
	c, _ := dial(t, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "query")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "part 0 of reply to \"query\"\npart 1 of reply to \"query\"\npart 2 of reply to \"query\"\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, Options{})
	r := h.route("idle", serve(t, echo("")))
	r.IdleTimeout = 300 * time.Millisecond
	addr := h.tcpRoute(r)

	idle, _ := dial(t, addr)
	busy, busyR := dial(t, addr)
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		idle.SetReadDeadline(time.Now().Add(5 * time.Second))
		idle.Read(make([]byte, 1))
		closed <- time.Since(start)
	}()
	// Traffic every 50ms keeps the other connection open well past the
	// timeout; the idle one is closed meanwhile.
	var idleAfter time.Duration
	for i := 0; time.Since(start) < 900*time.Millisecond; i++ {
		if got := roundTrip(t, busy, busyR, fmt.Sprint(i)); got != fmt.Sprint(i) {
			t.Fatalf("busy conn: got %q", got)
		}
		select {
		case idleAfter = <-closed:
		case <-time.After(50 * time.Millisecond):
		}
	}
	if idleAfter == 0 {
		idleAfter = <-closed
	}
	// The timer starts at accept, a little before start was taken.
	if idleAfter < 250*time.Millisecond || idleAfter > 2*time.Second {
		t.Errorf("idle conn closed after %v, want about 300ms", idleAfter)
	}
	if got := testkit.MetricValue(t, h.e.metrics.idleClosed.WithLabelValues("idle")); got != 1 {
		t.Errorf("idle closes = %v, want 1", got)
	}
}

func TestDialRetryAndNoEndpoint(t *testing.T) {
	h := newHarness(t, Options{})
	dead := testkit.UnusedAddr(t)
	live := serve(t, echo("live:"))
	addr := h.tcpRoute(h.route("retry", dead, live))
	for i := range 4 {
		c, r := dial(t, addr)
		if got := roundTrip(t, c, r, "x"); got != "live:x" {
			t.Fatalf("conn %d: got %q", i, got)
		}
	}
	if got := testkit.MetricValue(t, h.e.metrics.connectErrors.WithLabelValues("retry")); got < 1 {
		t.Errorf("connect errors = %v, want at least 1", got)
	}

	// Every endpoint down, then none at all: the client is closed.
	for _, r := range []*Route{h.route("down", testkit.UnusedAddr(t)), h.route("empty")} {
		addr := h.tcpRoute(r)
		c, _ := dial(t, addr)
		expectClosed(t, c)
		if got := testkit.MetricValue(t, h.e.metrics.noEndpoint.WithLabelValues(r.ID)); got != 1 {
			t.Errorf("%s: unrouted = %v, want 1", r.ID, got)
		}
	}
}

func TestUpdateReportsUnbindablePort(t *testing.T) {
	h := newHarness(t, Options{})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	r := h.route("ok", serve(t, echo("ok:")))
	err = h.e.Update(&Table{TCP: map[int]*Route{port: h.route("taken", "127.0.0.1:1"), 0: r}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Fatalf("err = %v, want one naming port %d", err, port)
	}
	c, cr := dial(t, h.e.Addr(0).String())
	if got := roundTrip(t, c, cr, "y"); got != "ok:y" {
		t.Fatalf("other port: got %q", got)
	}
}

func TestDrainClosesLongConnections(t *testing.T) {
	h := newHarness(t, Options{})
	addr := h.tcpRoute(h.route("drain", serve(t, echo(""))))
	c, r := dial(t, addr)
	roundTrip(t, c, r, "x")
	h.e.Close()
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Fatal("closed engine still accepts")
	}
	if got := roundTrip(t, c, r, "after close"); got != "after close" {
		t.Fatalf("got %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	h.e.Drain(ctx)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("Drain returned after %v, before its deadline with a connection open", d)
	}
	expectClosed(t, c)
}

// TestProxyProtocol sends PROXY headers to the edge from a trusted and an
// untrusted peer and checks what the backend receives, with the route
// sending v1 or v2 to it.
func TestProxyProtocol(t *testing.T) {
	got := make(chan string, 1)
	// The backend reports the client address from the header it receives
	// and the first bytes after it.
	backend := func(c net.Conn) {
		buf := make([]byte, 0, 512)
		for {
			n, err := c.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			hd, hn, perr := parseProxyHeader(buf)
			if perr == nil && len(buf) > hn && buf[len(buf)-1] == '\n' {
				got <- fmt.Sprintf("%s|%s", hd.src, buf[hn:])
				return
			}
			if err != nil || (perr != nil && perr != errNeedMore) {
				got <- fmt.Sprintf("error %v %v", err, perr)
				return
			}
		}
	}
	tests := []struct {
		name    string
		trusted string
		send    string // bytes from the client
		version int
		want    string
	}{
		{"trusted v1 in, v2 out", "127.0.0.0/8", "PROXY TCP4 203.0.113.7 192.0.2.1 40000 5432\r\nhello\n", 2, "203.0.113.7:40000|hello\n"},
		{"trusted v2 in, v1 out", "127.0.0.0/8", string(appendProxyHeader(nil, 2, netip.MustParseAddrPort("[2001:db8::7]:40000"), netip.MustParseAddrPort("[2001:db8::1]:5432"))) + "hello\n", 1, "[2001:db8::7]:40000|hello\n"},
		{"trusted LOCAL keeps the peer", "127.0.0.0/8", string(appendProxyHeader(nil, 2, netip.AddrPort{}, netip.AddrPort{})) + "hello\n", 2, "127.0.0.1:*|hello\n"},
		{"untrusted header passes as data", "10.0.0.0/8", "PROXY TCP4 203.0.113.7 192.0.2.1 40000 5432\r\nhello\n", 1, "127.0.0.1:*|PROXY TCP4 203.0.113.7 192.0.2.1 40000 5432\r\nhello\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix(tt.trusted)}})
			r := h.route("pp", serve(t, backend))
			r.ProxyProtocol = tt.version
			c, _ := dial(t, h.tcpRoute(r))
			io.WriteString(c, tt.send)
			select {
			case g := <-got:
				if !match(g, tt.want) {
					t.Errorf("backend saw %q, want %q", g, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("backend saw nothing")
			}
		})
	}

	t.Run("trusted peer without a header is closed", func(t *testing.T) {
		h := newHarness(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		c, _ := dial(t, h.tcpRoute(h.route("pp", serve(t, echo("")))))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		expectClosed(t, c)
		if got := testkit.MetricValue(t, h.e.metrics.proxyErrors); got != 1 {
			t.Errorf("proxy errors = %v, want 1", got)
		}
	})

	t.Run("ProxyListener sets RemoteAddr", func(t *testing.T) {
		h := newHarness(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pl := h.e.ProxyListener(ln)
		defer pl.Close()
		c, _ := dial(t, ln.Addr().String())
		io.WriteString(c, "PROXY TCP4 203.0.113.9 192.0.2.1 1234 80\r\nGET /")
		sc, err := pl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		if sc.RemoteAddr().String() != "203.0.113.9:1234" || sc.LocalAddr().String() != "192.0.2.1:80" {
			t.Errorf("addresses %v -> %v", sc.RemoteAddr(), sc.LocalAddr())
		}
		b := make([]byte, 5)
		if _, err := io.ReadFull(sc, b); err != nil || string(b) != "GET /" {
			t.Errorf("read %q, %v", b, err)
		}
	})
}

// match compares with "*" standing for one port number.
func match(got, want string) bool {
	before, after, ok := strings.Cut(want, "*")
	if !ok {
		return got == want
	}
	if !strings.HasPrefix(got, before) || !strings.HasSuffix(got, after) || len(got) < len(before)+len(after)+1 {
		return false
	}
	for _, c := range got[len(before) : len(got)-len(after)] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// TestSNIPassthrough: a passthrough name reaches the backend's own TLS
// server (the client verifies the backend's certificate), while other names
// and non-TLS bytes fall through to the local tls.Server on the wrapped
// listener, which answers with the edge's certificate.
func TestSNIPassthrough(t *testing.T) {
	// Two authorities: a client that trusts one cannot be served the other's
	// certificate.
	backendCA, edgeCA := testkit.NewCA(t, "backend CA"), testkit.NewCA(t, "edge CA")
	backendCert, backendPool := backendCA.Issue(t, "db.example.org", "x.y.apps.example.org").TLSCertificate(), backendCA.Pool
	edgeCert, edgePool := edgeCA.Issue(t, "edge.example.net", "unknown.test").TLSCertificate(), edgeCA.Pool
	backendCfg := &tls.Config{Certificates: []tls.Certificate{backendCert}}
	backend := serve(t, func(c net.Conn) {
		tc := tls.Server(c, backendCfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		echo("backend:")(tc)
	})

	h := newHarness(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	r := h.route("db", backend)
	if err := h.e.Update(&Table{SNI: map[string]*Route{"DB.example.org": r, "*.apps.example.org": r}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := h.e.TLSListener(ln)
	// The local termination: a tls.Server per accepted conn, echoing with
	// its own prefix and the client address it was given.
	edgeCfg := &tls.Config{Certificates: []tls.Certificate{edgeCert}}
	localErrs := make(chan error, 10)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer tl.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := tls.Server(c, edgeCfg)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					localErrs <- err
					return
				}
				echo("edge " + c.RemoteAddr().String() + ":")(tc)
			}()
		}
	}()
	addr := ln.Addr().String()

	tests := []struct {
		name       string
		serverName string
		pool       *x509.CertPool
		want       string // reply prefix
		wantCN     string
	}{
		{"exact name, other case", "Db.Example.Org", backendPool, "backend:", "db.example.org"},
		{"deep wildcard", "x.y.apps.example.org", backendPool, "backend:", "db.example.org"},
		{"unknown name terminates locally", "unknown.test", edgePool, "edge 127.0.0.1:", "edge.example.net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: tt.serverName, RootCAs: tt.pool})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != tt.wantCN {
				t.Errorf("certificate CN = %q, want %q", cn, tt.wantCN)
			}
			if got := roundTrip(t, c, bufio.NewReader(c), "hi"); !strings.HasPrefix(got, tt.want) || !strings.HasSuffix(got, "hi") {
				t.Errorf("got %q, want prefix %q", got, tt.want)
			}
		})
	}

	t.Run("no SNI terminates locally", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "edge.example.net" {
			t.Errorf("certificate CN = %q", cn)
		}
	})

	t.Run("PROXY v2 from a trusted peer", func(t *testing.T) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		raw, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.Write(appendProxyHeader(nil, 2, netip.MustParseAddrPort("198.51.100.4:777"), netip.MustParseAddrPort("192.0.2.1:443")))
		c := tls.Client(raw, &tls.Config{ServerName: "unknown.test", RootCAs: edgePool})
		if got := roundTrip(t, c, bufio.NewReader(c), "hi"); got != "edge 198.51.100.4:777:hi" {
			t.Errorf("got %q", got)
		}
	})

	t.Run("plain HTTP is handed to the TLS server", func(t *testing.T) {
		c, _ := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		// The local TLS stack sees the replayed bytes; net/http turns
		// this error into its "HTTP request to an HTTPS server" 400.
		select {
		case err := <-localErrs:
			var rh tls.RecordHeaderError
			if !errors.As(err, &rh) || string(rh.RecordHeader[:]) != "GET /" {
				t.Errorf("local handshake error = %v, want a RecordHeaderError on %q", err, "GET /")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("plain HTTP connection never reached the local TLS server")
		}
	})

	if got := testkit.MetricValue(t, h.e.metrics.peekFailures.WithLabelValues(peekNotTLS)); got != 1 {
		t.Errorf("not_tls peek failures = %v, want 1", got)
	}
}

func TestPeekFailuresAreClosed(t *testing.T) {
	h := newHarness(t, Options{PeekTimeout: 200 * time.Millisecond, MaxHelloBytes: 512})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := h.e.TLSListener(ln)
	defer tl.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	hello := captureHello(t, &tls.Config{ServerName: "db.example.org"})
	tests := []struct {
		name   string
		send   []byte
		reason string
	}{
		{"stall", hello[:3], peekTimeout},
		{"oversized", hello, peekTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := dial(t, ln.Addr().String())
			c.Write(tt.send)
			expectClosed(t, c)
			if got := testkit.MetricValue(t, h.e.metrics.peekFailures.WithLabelValues(tt.reason)); got != 1 {
				t.Errorf("%s failures = %v, want 1", tt.reason, got)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		c, _ := dial(t, ln.Addr().String())
		c.Write(hello[:3])
		c.(*net.TCPConn).CloseWrite()
		expectClosed(t, c)
		if got := testkit.MetricValue(t, h.e.metrics.peekFailures.WithLabelValues(peekTruncated)); got != 1 {
			t.Errorf("truncated failures = %v, want 1", got)
		}
	})
	tl.Close()
	for c := range accepted {
		c.Close()
		t.Errorf("a failed peek was handed to Accept")
	}
}

func TestLookupSNI(t *testing.T) {
	exact, wild, deep := &Route{ID: "exact"}, &Route{ID: "wild"}, &Route{ID: "deep"}
	s, errs := newSnapshot(&Table{SNI: map[string]*Route{
		"App.Example.org.":   exact,
		"*.example.org":      wild,
		"*.eu.example.org":   deep,
		"*":                  exact, // invalid
		"":                   exact, // invalid
		"bad name.example.o": exact, // invalid
	}})
	if len(errs) != 3 {
		t.Errorf("errors = %v, want 3", errs)
	}
	tests := []struct {
		name string
		want *Route
	}{
		{"app.example.org", exact},
		{"APP.EXAMPLE.ORG.", exact},
		{"other.example.org", wild},
		{"a.b.c.example.org", wild},
		{"x.eu.example.org", deep},
		{"a.b.eu.example.org", deep},
		{"eu.example.org", wild},
		{"example.org", nil},
		{".example.org", nil},
		{"example.com", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := s.lookupSNI(tt.name); got != tt.want {
			t.Errorf("lookupSNI(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.lookupSNI("a.b.eu.example.org") }); n != 0 {
		t.Errorf("lookupSNI allocates %v times", n)
	}
}

// TestEndEndpointsEndsCleanly: at the backend drain deadline a connection
// spliced to a task that left rotation gets a FIN, not a reset, and other
// connections are untouched.
func TestEndEndpointsEndsCleanly(t *testing.T) {
	h := newHarness(t, Options{})
	a := serve(t, echo("a:"))
	b := serve(t, echo("b:"))
	addrA := h.tcpRoute(h.route("pg", a))
	c, r := dial(t, addrA)
	if got := roundTrip(t, c, r, "hello"); got != "a:hello" {
		t.Fatalf("got %q", got)
	}
	if err := h.e.Update(&Table{TCP: map[int]*Route{0: h.route("pg", b)}}); err != nil {
		t.Fatal(err)
	}
	c2, r2 := dial(t, addrA)
	if got := roundTrip(t, c2, r2, "new"); got != "b:new" {
		t.Fatalf("got %q", got)
	}
	if n := h.e.EndEndpoints([]string{a}); n != 1 {
		t.Fatalf("ended %d connections, want 1", n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("ended connection read %v, want a clean EOF", err)
	}
	if got := roundTrip(t, c2, r2, "still"); got != "b:still" {
		t.Fatalf("other connection: got %q", got)
	}
}
