package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// h3Edge is a proxy serving HTTP/3 on a loopback UDP socket, with a
// certificate for *.example.org.
type h3Edge struct {
	p      *Proxy
	srv    *HTTP3Server
	addr   string
	reg    *prometheus.Registry
	tr     *http3.Transport
	client *http.Client
	done   chan struct{} // closed when Serve has returned
	err    error         // Serve's result
}

func startH3(t *testing.T, cfg route.Config, o ServerOptions) *h3Edge {
	t.Helper()
	return startH3With(t, cfg, o, nil)
}

// startH3With is startH3 with setup called on the server before it serves.
func startH3With(t *testing.T, cfg route.Config, o ServerOptions, setup func(*HTTP3Server)) *h3Edge {
	t.Helper()
	ca := testkit.NewCA(t, "h3 CA")
	cert := ca.Issue(t, "*.example.org").TLSCertificate()
	reg := prometheus.NewRegistry()
	p := New(Options{Logger: zaptest.NewLogger(t), Registerer: reg, DialTimeout: time.Second})
	p.Update(cfg)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.NewHTTP3Server("http3", o, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	if setup != nil {
		setup(srv)
	}
	e := &h3Edge{p: p, srv: srv, addr: pc.LocalAddr().String(), reg: reg, done: make(chan struct{})}
	go func() { e.err = srv.Serve(pc); close(e.done) }()
	e.tr = &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, e.addr, tc, qc) // every name resolves to the edge
		},
	}
	e.client = &http.Client{Transport: e.tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.tr.Close()
		srv.Shutdown(ctx)
		<-e.done
		p.Close()
	})
	return e
}

func (e *h3Edge) do(t *testing.T, method, url string, body io.Reader, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// TestHTTP3 sends requests over HTTP/3 through the proxy's own routing,
// bodies, retries and error answers.
func TestHTTP3(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/large":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(large)
		case "/echo":
			w.Header().Set("X-Proto-Seen", r.Proto)
			io.Copy(w, r.Body)
		default:
			fmt.Fprintf(w, "files %s %s", r.Method, r.URL.RequestURI())
		}
	}))
	defer files.Close()
	web := testkit.Backend(t, "web")
	cfg := route.Config{Routes: []route.Route{
		testkit.Route("files", []string{"files.example.org"}, "/", testkit.Addr(files)),
		testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web)),
		testkit.Route("down", []string{"down.example.org"}, "/", testkit.UnusedAddr(t)),
	}}
	e := startH3(t, cfg, ServerOptions{})

	t.Run("GET", func(t *testing.T) {
		resp, b := e.do(t, "GET", "https://web.example.org/a?b=1", nil, nil)
		if resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" || string(b) != "web GET /a?b=1" {
			t.Fatalf("%d %s %q", resp.StatusCode, resp.Proto, b)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Error("no X-Request-Id")
		}
	})
	t.Run("routing by host", func(t *testing.T) {
		_, b := e.do(t, "GET", "https://files.example.org/x", nil, nil)
		if string(b) != "files GET /x" {
			t.Fatalf("files.example.org answered %q", b)
		}
	})
	t.Run("POST with a body", func(t *testing.T) {
		body := strings.Repeat("upload ", 100_000) // 700 kB: beyond the request buffer, so it streams
		resp, b := e.do(t, "POST", "https://files.example.org/echo", strings.NewReader(body), nil)
		if resp.StatusCode != 200 || string(b) != body {
			t.Fatalf("%d, %d bytes back of %d", resp.StatusCode, len(b), len(body))
		}
		if got := resp.Header.Get("X-Proto-Seen"); got != "HTTP/1.1" {
			t.Errorf("the task saw %s, want HTTP/1.1", got)
		}
	})
	t.Run("large download", func(t *testing.T) {
		resp, b := e.do(t, "GET", "https://files.example.org/large", nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(b, large) {
			t.Fatalf("%d, %d bytes of %d", resp.StatusCode, len(b), len(large))
		}
	})
	t.Run("404", func(t *testing.T) {
		resp, b := e.do(t, "GET", "https://nothing.example.org/", nil, nil)
		if resp.StatusCode != 404 || string(b) != "Not Found\n" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	})
	t.Run("502 from a failed upstream", func(t *testing.T) {
		resp, _ := e.do(t, "GET", "https://down.example.org/", nil, nil)
		if resp.StatusCode != 502 {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
	})
	t.Run("431 for a header block over the limit", func(t *testing.T) {
		resp, _ := e.do(t, "GET", "https://web.example.org/", nil, http.Header{"X-Big": {strings.Repeat("x", 70<<10)}})
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		// One connection for each name: web, files, nothing, down.
		if n := h3Gauge(t, e.reg, "swarmgate_open_connections", "http3"); n != 4 {
			t.Errorf("open HTTP/3 connections = %v, want 4", n)
		}
	})
}

// TestHTTP3BodyLimit: a body over MaxBodyBytes gets 413, as on TCP.
func TestHTTP3BodyLimit(t *testing.T) {
	web := testkit.Backend(t, "web")
	e := startH3(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web))}},
		ServerOptions{MaxBodyBytes: 1000})
	resp, _ := e.do(t, "POST", "https://web.example.org/", strings.NewReader(strings.Repeat("x", 2000)), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// TestHTTP3Shutdown: a request in flight when the shutdown begins is
// answered in full, the connection is told GOAWAY (a new request on it
// fails without reaching the proxy), and the shutdown ends as soon as the
// request has, long before its deadline.
func TestHTTP3Shutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	r := testkit.Route("slow", []string{"slow.example.org"}, "/", testkit.Addr(slow))
	r.Timeout = time.Minute
	e := startH3(t, route.Config{Routes: []route.Route{r}}, ServerOptions{})
	got := make(chan string, 1)
	go func() {
		resp, err := e.client.Get("https://slow.example.org/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	testkit.Receive(t, started, 5*time.Second, "the request at the task")
	shut := make(chan error, 1)
	begin := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- e.srv.Shutdown(ctx)
	}()
	// The GOAWAY reaches the client: the connection takes no new request.
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://slow.example.org/again", nil)
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
			return errors.New("a new request went through after the shutdown began")
		}
		return nil
	})
	close(release)
	if s := testkit.Receive(t, got, 5*time.Second, "the answer in flight"); s != "200 finished" {
		t.Fatalf("request in flight got %q", s)
	}
	if err := testkit.Receive(t, shut, 5*time.Second, "the end of the shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	testkit.Receive(t, e.done, time.Second, "Serve's return")
	if e.err != nil {
		t.Fatalf("Serve: %v", e.err)
	}
}

// TestHTTP3ShutdownIdle: a client that keeps an idle connection open after
// the GOAWAY does not hold the shutdown to its deadline.
func TestHTTP3ShutdownIdle(t *testing.T) {
	web := testkit.Backend(t, "web")
	e := startH3(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web))}}, ServerOptions{})
	// A raw QUIC connection that speaks no HTTP/3 at all: it ignores GOAWAY.
	conn, err := quic.DialAddr(context.Background(), e.addr, &tls.Config{RootCAs: e.tr.TLSClientConfig.RootCAs, ServerName: "web.example.org", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := h3Gauge(t, e.reg, "swarmgate_open_connections", "http3"); n != 1 {
			return fmt.Errorf("%v connections open, want 1", n)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	begin := time.Now()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("shutdown with an idle connection took %v", took)
	}
	select {
	case <-conn.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
}

func TestAltSvc(t *testing.T) {
	if got, want := AltSvc(443, 24*time.Hour), `h3=":443"; ma=86400`; got != want {
		t.Fatalf("AltSvc = %q, want %q", got, want)
	}
	h := AdvertiseHTTP3(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), `h3=":8443"; ma=60`)
	for _, tls := range []bool{false, true} {
		r := httptest.NewRequest("GET", "/", nil)
		if !tls {
			r.TLS = nil
		} else if r.TLS == nil {
			r = httptest.NewRequest("GET", "https://example.org/", nil)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := ""
		if tls {
			want = `h3=":8443"; ma=60`
		}
		if got := w.Header().Get("Alt-Svc"); got != want {
			t.Errorf("TLS %v: Alt-Svc %q, want %q", tls, got, want)
		}
	}
}

// h3Gauge reads the gauge name{listener=listener} from reg.
func h3Gauge(t *testing.T, reg *prometheus.Registry, name, listener string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "listener" && l.GetValue() == listener {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{listener=%q}", name, listener)
	return 0
}

// TestHTTP3BodyTimeout: a client that stops sending in the middle of its
// body gets 408 after BodyTimeout, as on TCP.
func TestHTTP3BodyTimeout(t *testing.T) {
	web := testkit.Backend(t, "web")
	e := startH3(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web))}},
		ServerOptions{BodyTimeout: 300 * time.Millisecond})
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("the first part, then nothing")) // and the pipe stays open
	req, _ := http.NewRequest("POST", "https://web.example.org/upload", pr)
	req.ContentLength = 1 << 20
	begin := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("408 after %v", took)
	}
}

// dialH3 opens a raw QUIC connection to the edge that offers h3, as an
// HTTP/3 client's would be, without any HTTP/3 on it yet.
func (e *h3Edge) dialH3(t *testing.T) *quic.Conn {
	t.Helper()
	conn, err := quic.DialAddr(context.Background(), e.addr, &tls.Config{RootCAs: e.tr.TLSClientConfig.RootCAs, ServerName: "web.example.org", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

// TestHTTP3HeaderTimeout: a request stream whose HEADERS frame does not
// complete within ReadHeaderTimeout closes its connection with
// H3_REQUEST_INCOMPLETE, as ReadHeaderTimeout closes a TCP connection; a
// client that sends whole requests, however far apart, keeps its
// connection, and so does one whose stream the server answered itself
// (431).
func TestHTTP3HeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	web := testkit.Backend(t, "web")
	e := startH3(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web))}},
		ServerOptions{ReadHeaderTimeout: timeout, MaxHeaderBytes: 4 << 10})

	t.Run("stalled headers", func(t *testing.T) {
		conn := e.dialH3(t)
		str, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// A HEADERS frame (type 0x01) announcing 50 bytes, and 3 of them.
		begin := time.Now()
		if _, err := str.Write([]byte{0x01, 50, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-conn.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the connection with a stalled request stream is still open after 5 s")
		}
		took := time.Since(begin)
		if took < timeout-50*time.Millisecond {
			t.Errorf("closed after %v, before the header timeout of %v", took, timeout)
		}
		var appErr *quic.ApplicationError
		if err := context.Cause(conn.Context()); !errors.As(err, &appErr) || appErr.ErrorCode != quic.ApplicationErrorCode(http3.ErrCodeRequestIncomplete) || !appErr.Remote {
			t.Fatalf("closed with %v, want the server's H3_REQUEST_INCOMPLETE", err)
		}
	})

	t.Run("answered by the server", func(t *testing.T) {
		conn := e.dialH3(t)
		str, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// A HEADERS frame over MaxHeaderBytes: http3 answers 431 and the
		// handler never sees it. Length 16384 as a 4-byte varint.
		if _, err := str.Write([]byte{0x01, 0x80, 0x00, 0x40, 0x00}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-conn.Context().Done():
			t.Fatalf("closed: %v", context.Cause(conn.Context()))
		case <-time.After(3 * timeout):
		}
	})

	t.Run("whole requests far apart", func(t *testing.T) {
		for i := range 3 {
			if i > 0 {
				time.Sleep(2 * timeout)
			}
			resp, b := e.do(t, "GET", "https://web.example.org/", nil, nil)
			if resp.StatusCode != 200 || string(b) != "web GET /" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
			}
		}
	})
}

// TestHTTP3HeaderTimeoutBusy: requests back to back from 16 loops on one
// connection, for several header timeouts: none of them is taken for a
// stalled stream, the connection stays the one it was.
func TestHTTP3HeaderTimeoutBusy(t *testing.T) {
	const timeout = 200 * time.Millisecond
	web := testkit.Backend(t, "web")
	var handshakes atomic.Int64
	e := startH3With(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web))}},
		ServerOptions{ReadHeaderTimeout: timeout}, func(s *HTTP3Server) {
			s.Handshakes = func(bool) { handshakes.Add(1) }
		})
	end := time.Now().Add(5 * timeout)
	var wg sync.WaitGroup
	var requests, failed atomic.Int64
	for range 16 {
		wg.Go(func() {
			for n := 0; n < 2000 && time.Now().Before(end); n++ {
				requests.Add(1)
				resp, err := e.client.Get("https://web.example.org/")
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	time.Sleep(2 * timeout) // the timers of the last streams
	if failed.Load() > 0 || handshakes.Load() != 1 {
		t.Fatalf("%d of %d requests failed, %d connections; want none and 1", failed.Load(), requests.Load(), handshakes.Load())
	}
	if n := h3Gauge(t, e.reg, "swarmgate_open_connections", "http3"); n != 1 {
		t.Fatalf("%v connections open, want 1", n)
	}
}

// TestHTTP3HeaderWait: the bookkeeping of streams waiting for headers,
// whatever the order in which the trace and the handler report a stream
// (quic-go delivers a packet's frames before it records the packet).
func TestHTTP3HeaderWait(t *testing.T) {
	s := &HTTP3Server{headerTimeout: time.Hour}
	c := s.newConn()
	waiting := func() []quic.StreamID {
		c.mu.Lock()
		defer c.mu.Unlock()
		var ids []quic.StreamID
		for id := range c.waiting {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	c.watchHeaders(0)
	c.watchHeaders(3) // a unidirectional stream of the client's: no request
	c.headersIn(4)    // the handler before the trace
	c.watchHeaders(8) // opens 4 (done already) and 8
	if got := waiting(); !slices.Equal(got, []quic.StreamID{0, 8}) {
		t.Fatalf("waiting %v, want [0 8]", got)
	}
	c.headersIn(0)
	c.headersIn(8)
	if got := waiting(); len(got) != 0 || len(c.early) != 0 {
		t.Fatalf("waiting %v, early %v after every stream's headers", got, c.early)
	}
	c.watchHeaders(20) // 12, 16 and 20 at once
	if got := waiting(); !slices.Equal(got, []quic.StreamID{12, 16, 20}) {
		t.Fatalf("waiting %v, want [12 16 20]", got)
	}
	c.finish()
	if got := waiting(); len(got) != 0 {
		t.Fatalf("waiting %v after the connection ended", got)
	}
}

// TestHTTP3Handshakes: Handshakes hears of every QUIC connection's TLS
// handshake, complete or not.
func TestHTTP3Handshakes(t *testing.T) {
	web := testkit.Backend(t, "web")
	var mu sync.Mutex
	got := map[bool]int{}
	e := startH3With(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.example.org"}, "/", testkit.Addr(web))}},
		ServerOptions{ReadHeaderTimeout: time.Second}, func(s *HTTP3Server) {
			s.Handshakes = func(complete bool) {
				mu.Lock()
				got[complete]++
				mu.Unlock()
			}
		})
	if resp, _ := e.do(t, "GET", "https://web.example.org/", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// A client that does not trust the certificate aborts the handshake.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := quic.DialAddr(ctx, e.addr, &tls.Config{ServerName: "web.example.org", NextProtos: []string{http3.NextProtoH3}}, nil); err == nil {
		conn.CloseWithError(0, "")
		t.Fatal("a handshake with an untrusted certificate succeeded")
	}
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got[true] != 1 || got[false] != 1 {
			return fmt.Errorf("handshakes complete %d, failed %d; want 1 and 1", got[true], got[false])
		}
		return nil
	})
}
