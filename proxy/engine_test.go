package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// engineEdge is a proxy served on a plain and a TLS listener by one engine.
type engineEdge struct {
	p                *Proxy
	reg              *prometheus.Registry
	plain, tlsServer *Server
	plainAddr        string
	tlsAddr          string
	roots            *tls.Config // the client side: trusts the listener's certificate
}

// startEngine serves cfg on a plain and a TLS listener (ALPN h2 and
// http/1.1), with the own loop or net/http's server for HTTP/1.
func startEngine(t testing.TB, cfg route.Config, stdlib bool) *engineEdge {
	t.Helper()
	reg := prometheus.NewRegistry()
	p := New(Options{Logger: zaptest.NewLogger(t), Registerer: reg, DialTimeout: time.Second})
	p.Update(cfg)
	e := &engineEdge{p: p, reg: reg}
	o := ServerOptions{StdlibHTTP1: stdlib}
	e.plain = p.NewServer("http", o)
	e.tlsServer = p.NewServer("https", o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS() // for its certificate and the client config that trusts it
	serverTLS := &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
	e.roots = cert.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cert.Close()
	e.tlsServer.TLSConfig = serverTLS
	go e.plain.Serve(ln)
	go e.tlsServer.Serve(tls.NewListener(tln, serverTLS))
	e.plainAddr, e.tlsAddr = ln.Addr().String(), tln.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.plain.Shutdown(ctx)
		e.tlsServer.Shutdown(ctx)
		p.Close()
	})
	return e
}

// openConns reads swarmgate_open_connections{listener} from reg.
func openConns(t *testing.T, reg *prometheus.Registry, listener string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "swarmgate_open_connections" {
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
	return 0
}

func engines(t *testing.T, f func(t *testing.T, stdlib bool)) {
	for _, stdlib := range []bool{false, true} {
		name := "own"
		if stdlib {
			name = "stdlib"
		}
		t.Run(name, func(t *testing.T) { f(t, stdlib) })
	}
}

// TestEnginesServeEveryProtocol: HTTP/1.1 and h2c on the plain listener,
// HTTP/1.1 and h2 by ALPN on the TLS one, each with either engine for
// HTTP/1, and the open connections gauge back at zero once they close.
func TestEnginesServeEveryProtocol(t *testing.T) {
	engines(t, func(t *testing.T, stdlib bool) {
		b := testkit.Backend(t, "b")
		e := startEngine(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}}, stdlib)
		h1 := &http.Transport{TLSClientConfig: e.roots.Clone()}
		h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
		h2 := &http.Transport{TLSClientConfig: e.roots.Clone(), ForceAttemptHTTP2: true}
		h2c := &http.Transport{Protocols: new(http.Protocols)}
		h2c.Protocols.SetUnencryptedHTTP2(true)
		for _, tt := range []struct {
			name, url, proto string
			tr               *http.Transport
		}{
			{"http/1.1", "http://" + e.plainAddr, "HTTP/1.1", h1},
			{"h2c", "http://" + e.plainAddr, "HTTP/2.0", h2c},
			{"https http/1.1", "https://" + e.tlsAddr, "HTTP/1.1", h1},
			{"https h2", "https://" + e.tlsAddr, "HTTP/2.0", h2},
		} {
			t.Run(tt.name, func(t *testing.T) {
				client := &http.Client{Transport: tt.tr}
				for i := range 3 {
					resp := testkit.Request(t, client, "POST", tt.url+"/x", "app.example.org", strings.NewReader(strings.Repeat("a", i*10000)))
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(body) != "b POST /x" || resp.Proto != tt.proto {
						t.Fatalf("%d %s %q, want 200 %s", resp.StatusCode, resp.Proto, body, tt.proto)
					}
				}
				tt.tr.CloseIdleConnections()
			})
		}
		for _, listener := range []string{"http", "https"} {
			deadline := time.Now().Add(5 * time.Second)
			for openConns(t, e.reg, listener) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %v connections counted open after every client closed", listener, openConns(t, e.reg, listener))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
}

// TestEngineShutdownLosesNoRequest: a connection accepted just before
// Shutdown gets its first request answered, an idle keep-alive connection
// is closed, and a request in flight finishes, with either engine.
func TestEngineShutdownLosesNoRequest(t *testing.T) {
	engines(t, func(t *testing.T, stdlib bool) {
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				<-release
			}
			io.WriteString(w, "done "+r.URL.Path)
		}))
		defer slow.Close()
		e := startEngine(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(slow))}}, stdlib)
		dial := func() (net.Conn, *bufio.Reader) {
			c, err := net.DialTimeout("tcp", e.plainAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(10 * time.Second))
			return c, bufio.NewReader(c)
		}
		get := func(c net.Conn, path string) {
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: app.example.org\r\n\r\n")
		}
		idle, idleBr := dial()
		get(idle, "/first")
		if resp, err := http.ReadResponse(idleBr, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v %v", resp, err)
		} else {
			io.Copy(io.Discard, resp.Body)
		}
		busy, busyBr := dial()
		get(busy, "/slow")
		fresh, freshBr := dial()
		time.Sleep(50 * time.Millisecond) // accepted, the slow request upstream
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- e.plain.Shutdown(ctx)
		}()
		time.Sleep(50 * time.Millisecond)
		get(fresh, "/fresh")
		resp, err := http.ReadResponse(freshBr, nil)
		if err != nil {
			t.Fatalf("fresh connection's first request: %v", err)
		}
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "done /fresh" {
			t.Fatalf("fresh connection: %d %q", resp.StatusCode, b)
		}
		if _, err := idleBr.ReadByte(); err != io.EOF {
			t.Fatalf("idle keep-alive connection: read %v, want EOF", err)
		}
		close(release)
		resp, err = http.ReadResponse(busyBr, nil)
		if err != nil {
			t.Fatalf("request in flight: %v", err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "done /slow" {
			t.Fatalf("request in flight: %q", b)
		}
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	})
}

// BenchmarkProxyKeepAlive: one keep-alive client connection through the
// proxy to a backend, a request at a time, with either engine; cpu-ns/op
// is the process's CPU time per request.
func BenchmarkProxyKeepAlive(b *testing.B) {
	for _, stdlib := range []bool{true, false} {
		name := "own"
		if stdlib {
			name = "stdlib"
		}
		b.Run(name, func(b *testing.B) {
			backend := testkit.Backend(b, "b")
			e := startEngine(b, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(backend))}}, stdlib)
			c, err := net.Dial("tcp", e.plainAddr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /bench HTTP/1.1\r\nHost: app.example.org\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds: the
// client's and the backend's shares are in it too, the same for both
// engines.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestEnginesFrameTransferEncodingSafely: a request with Transfer-Encoding
// beside Content-Length, or in HTTP/1.0, is refused by the own loop (400)
// and answered by net/http's (200); with both the connection closes and
// nothing sent after it is read as a request.
func TestEnginesFrameTransferEncodingSafely(t *testing.T) {
	engines(t, func(t *testing.T, stdlib bool) {
		b := testkit.Backend(t, "b")
		e := startEngine(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}}, stdlib)
		want := http.StatusBadRequest
		if stdlib {
			want = http.StatusOK
		}
		smuggled := "GET /smuggled HTTP/1.1\r\nHost: app.example.org\r\n\r\n"
		for _, req := range []string{
			"POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			"POST / HTTP/1.0\r\nHost: app.example.org\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
		} {
			c, err := net.DialTimeout("tcp", e.plainAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, req+smuggled)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != want || !resp.Close {
				t.Fatalf("status %d, close %v; want %d and close", resp.StatusCode, resp.Close, want)
			}
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("after the answer: %q", rest)
			}
			c.Close()
		}
	})
}

// TestEnginesEndUpstreamExchanges: with either engine, the upstream
// exchange on the own transport ends when the client leaves (the backend
// sees its connection close), when the response timeout passes after a
// request body was sent (504), and at the backend drain deadline in the
// middle of a streamed response (the stream ends, the backend sees it).
func TestEnginesEndUpstreamExchanges(t *testing.T) {
	engines(t, func(t *testing.T, stdlib bool) {
		ended := make(chan string, 4)
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/stream" {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush()
			}
			select {
			case <-r.Context().Done():
				ended <- r.URL.Path
			case <-time.After(5 * time.Second):
			}
		}))
		defer backend.Close()
		slow := testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(backend))
		slow.Timeout = 300 * time.Millisecond
		patient := testkit.Route("patient", []string{"patient.example.org"}, "/", testkit.Addr(backend))
		patient.Timeout = 10 * time.Second
		e := startEngine(t, route.Config{Routes: []route.Route{slow, patient}}, stdlib)
		waitEnded := func(path string) {
			t.Helper()
			select {
			case got := <-ended:
				if got != path {
					t.Fatalf("the backend saw %s end, want %s", got, path)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("%s: the upstream exchange went on", path)
			}
		}
		dial := func() (net.Conn, *bufio.Reader) {
			c, err := net.DialTimeout("tcp", e.plainAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			return c, bufio.NewReader(c)
		}

		c, _ := dial()
		io.WriteString(c, "GET /gone HTTP/1.1\r\nHost: patient.example.org\r\n\r\n")
		time.Sleep(100 * time.Millisecond) // upstream, past the watch's delay
		c.Close()
		waitEnded("/gone")

		c, br := dial()
		start := time.Now()
		io.WriteString(c, "POST /body HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 5\r\n\r\nhello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) < slow.Timeout {
			t.Fatalf("a request with a body: %d after %v, want 504 after %v", resp.StatusCode, time.Since(start), slow.Timeout)
		}
		waitEnded("/body")
		c.Close()

		c, br = dial()
		defer c.Close()
		io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: patient.example.org\r\n\r\n")
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "data: 1\n" {
			t.Fatalf("stream: %q %v", line, err)
		}
		if n := e.p.EndLongLived(map[string]bool{testkit.Addr(backend): true}); n != 1 {
			t.Fatalf("EndLongLived ended %d exchanges, want 1", n)
		}
		waitEnded("/stream")
	})
}

// BenchmarkProxyH2: 16 concurrent requests over one HTTP/2 (TLS)
// connection through the proxy to a backend, as h2load's streams; cpu-ns/op
// is the process's CPU time per request (client and backend included).
func BenchmarkProxyH2(b *testing.B) {
	backend := testkit.Backend(b, "b")
	e := startEngine(b, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(backend))}}, false)
	tr := &http.Transport{TLSClientConfig: e.roots.Clone(), ForceAttemptHTTP2: true, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func() error {
		req, _ := http.NewRequest("GET", "https://"+e.tlsAddr+"/bench", nil)
		req.Host = "app.example.org"
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			return fmt.Errorf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
		}
		return nil
	}
	if err := get(); err != nil { // the connection, before the clock
		b.Fatal(err)
	}
	const streams = 16
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := get(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
