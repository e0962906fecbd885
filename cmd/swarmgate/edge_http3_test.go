package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// h3Client is an HTTP/3 client (quic-go) that reaches addr for every name.
func h3Client(roots *x509.CertPool, addr string) (*http.Client, *http3.Transport) {
	return h3ClientDialing(roots, addr, func() {})
}

// h3ClientDialing is h3Client calling dialing on each new QUIC
// connection: the transport dials one of its own after a GOAWAY.
func h3ClientDialing(roots *x509.CertPool, addr string, dialing func()) (*http.Client, *http3.Transport) {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			dialing()
			return quic.DialAddr(ctx, addr, tc, qc)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr
}

// http3Routes writes a routes file: web and files under one certificate,
// down with no task listening.
func http3Routes(t *testing.T, web, files, down string) string {
	t.Helper()
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: web
    labels: {swarmgate.hosts: web.example.org, swarmgate.port: "80", swarmgate.tls: site}
    endpoints: [%q]
  - name: files
    labels: {swarmgate.hosts: files.example.org, swarmgate.port: "80", swarmgate.tls: site}
    endpoints: [%q]
  - name: down
    labels: {swarmgate.hosts: down.example.org, swarmgate.port: "80", swarmgate.tls: site}
    endpoints: [%q]
`, web, files, down)), 0o644)
	return routes
}

// TestEdgeHTTP3 runs the edge with --http3 (its default with --https) and
// sends requests with quic-go's HTTP/3 client: GET, POST with a body, a large
// download, routing by host, 404 and 502; the HTTPS listener advertises
// HTTP/3 with Alt-Svc on its port, and the access log records HTTP/3.0.
func TestEdgeHTTP3(t *testing.T) {
	certs := t.TempDir()
	ca := testkit.NewCA(t, "edge CA")
	ca.Issue(t, "web.example.org", "files.example.org", "down.example.org", "*.example.org").WriteFiles(t, certs, "site")
	large := bytes.Repeat([]byte("swarmgate HTTP/3 "), 1<<19) // 8.5 MiB
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/large":
			w.Write(large)
		case "/echo":
			io.Copy(w, r.Body)
		default:
			fmt.Fprintf(w, "files %s", r.URL.Path)
		}
	}))
	defer files.Close()
	web := testkit.Addr(testkit.Backend(t, "web"))
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t),
		routes: http3Routes(t, web, testkit.Addr(files), testkit.UnusedAddr(t)), routesPoll: time.Second,
		drainTimeout: 2 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
		http3: true, accessLog: true,
	}
	o.certs = certs
	log := &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEdge(ctx, o, zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(log), zap.InfoLevel)))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runEdge: %v", err)
		}
	}()
	waitReady(t, o.adminAddr)
	client, tr := h3Client(ca.Pool, o.httpsAddr)
	defer tr.Close()
	get := func(t *testing.T, method, url string, body io.Reader) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url, body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: body: %v", method, url, err)
		}
		if resp.Proto != "HTTP/3.0" {
			t.Fatalf("%s %s: %s", method, url, resp.Proto)
		}
		return resp, b
	}

	t.Run("GET", func(t *testing.T) {
		resp, b := get(t, "GET", "https://web.example.org/hello?x=1", nil)
		if resp.StatusCode != 200 || string(b) != "web GET /hello?x=1" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	})
	t.Run("routing by host", func(t *testing.T) {
		if _, b := get(t, "GET", "https://files.example.org/hello", nil); string(b) != "files /hello" {
			t.Fatalf("files.example.org answered %q", b)
		}
	})
	t.Run("POST with a body", func(t *testing.T) {
		body := strings.Repeat("0123456789", 50_000) // 500 kB
		resp, b := get(t, "POST", "https://files.example.org/echo", strings.NewReader(body))
		if resp.StatusCode != 200 || string(b) != body {
			t.Fatalf("%d, %d of %d bytes back", resp.StatusCode, len(b), len(body))
		}
	})
	t.Run("large download", func(t *testing.T) {
		resp, b := get(t, "GET", "https://files.example.org/large", nil)
		if resp.StatusCode != 200 || !bytes.Equal(b, large) {
			t.Fatalf("%d, %d of %d bytes", resp.StatusCode, len(b), len(large))
		}
	})
	t.Run("404", func(t *testing.T) {
		// The certificate covers *.example.org; no route has this name.
		resp, b := get(t, "GET", "https://nothing.example.org/", nil)
		if resp.StatusCode != http.StatusNotFound || string(b) != "Not Found\n" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	})
	t.Run("502 from a failed upstream", func(t *testing.T) {
		if resp, _ := get(t, "GET", "https://down.example.org/", nil); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
	})
	t.Run("Alt-Svc over TLS", func(t *testing.T) {
		h2 := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: ca.Pool},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, o.httpsAddr)
			}}
		defer h2.CloseIdleConnections()
		resp, err := (&http.Client{Transport: h2, Timeout: 5 * time.Second}).Get("https://web.example.org/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := fmt.Sprintf(`h3=":%d"; ma=86400`, portOf(o.httpsAddr))
		if got := resp.Header.Get("Alt-Svc"); resp.Proto != "HTTP/2.0" || got != want {
			t.Fatalf("%s Alt-Svc %q, want %q", resp.Proto, got, want)
		}
		plain, err := http.Get("http://" + o.httpAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		plain.Body.Close()
		if got := plain.Header.Get("Alt-Svc"); got != "" {
			t.Errorf("plain HTTP answered Alt-Svc %q", got)
		}
	})
	t.Run("access log", func(t *testing.T) {
		testkit.Eventually(t, 2*time.Second, 20*time.Millisecond, func() error {
			if !strings.Contains(log.String(), `"proto":"HTTP/3.0"`) {
				return fmt.Errorf("no HTTP/3.0 request in the access log")
			}
			return nil
		})
	})
}

// TestEdgeHTTP3Off: --http3=false binds no UDP socket and advertises nothing.
func TestEdgeHTTP3Off(t *testing.T) {
	certs := t.TempDir()
	ca := testkit.NewCA(t, "edge CA")
	ca.Issue(t, "web.example.org", "files.example.org", "down.example.org").WriteFiles(t, certs, "site")
	web := testkit.Addr(testkit.Backend(t, "web"))
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t),
		routes: http3Routes(t, web, web, web), routesPoll: time.Second, drainTimeout: 2 * time.Second, dialTimeout: time.Second,
	}
	o.certs = certs
	cmd := newEdgeCmd(&logOptions{})
	if err := cmd.Flags().Parse([]string{"--http3=false"}); err != nil {
		t.Fatal(err)
	}
	if f := cmd.Flags().Lookup("http3"); f.DefValue != "true" || f.Value.String() != "false" {
		t.Fatalf("--http3: default %s, parsed %s", f.DefValue, f.Value)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEdge(ctx, o, zaptest.NewLogger(t)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runEdge: %v", err)
		}
	}()
	waitReady(t, o.adminAddr)
	pc, err := net.ListenPacket("udp", o.httpsAddr) // free: nothing serves QUIC there
	if err != nil {
		t.Fatalf("the UDP port is taken with --http3=false: %v", err)
	}
	pc.Close()
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, o.httpsAddr)
		}}
	defer h2.CloseIdleConnections()
	resp, err := (&http.Client{Transport: h2, Timeout: 5 * time.Second}).Get("https://web.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Fatalf("Alt-Svc %q with --http3=false", got)
	}
}

// TestEdgeHandOverHTTP3 restarts an edge by socket hand-over while HTTP/3
// clients keep sending requests, on a new QUIC connection every ten. The UDP
// socket passes with the TCP ones; the old edge's GOAWAY moves its clients
// to the new one. No request on an established connection fails. A
// handshake the old edge had under way when it stopped accepting is refused
// (CONNECTION_REFUSED: quic-go refuses the handshakes in progress when its
// listener closes; a browser then falls back to TCP): at most one for each
// client, and they are counted. While the old edge drains, both processes
// read the one UDP socket, and a packet of a connection that one of them
// holds can reach the other, which drops it: a connection opened in that
// window (by a new client, or by one the old edge's GOAWAY moved on) can
// stall (seen on a loaded machine: one request per client timed out).
// Those are counted apart, at most one for each client; a request on a
// connection opened before the hand-over must not fail.
func TestEdgeHandOverHTTP3(t *testing.T) {
	certs := t.TempDir()
	ca := testkit.NewCA(t, "edge CA")
	ca.Issue(t, "web.example.org", "files.example.org", "down.example.org").WriteFiles(t, certs, "site")
	web := testkit.Addr(testkit.Backend(t, "web"))
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), routes: http3Routes(t, web, web, web),
		routesPoll: time.Second, drainTimeout: 5 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
		handover: filepath.Join(t.TempDir(), "edge.sock"), http3: true,
	}
	o.certs = certs
	start := func() (context.CancelFunc, chan error) { return runEdgeAsync(t, o) }
	cancelOld, oldDone := start()
	defer cancelOld()
	get := func(c *http.Client) error { return getOK(c, "https://web.example.org/x") }
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error {
		c, tr := h3Client(ca.Pool, o.httpsAddr)
		defer tr.Close()
		return get(c)
	})
	var ok, failed, refused, stalled atomic.Int64
	var handingOver atomic.Bool
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for n := 0; n < 2000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// inWindow: the transport dialed a connection during the
				// hand-over (a new client, or the old edge's GOAWAY made it
				// dial again).
				var inWindow atomic.Bool
				c, tr := h3ClientDialing(ca.Pool, o.httpsAddr, func() {
					if handingOver.Load() {
						inWindow.Store(true)
					}
				})
				for range 10 { // ten requests on a connection, then a new one
					if err := get(c); err != nil {
						if strings.Contains(err.Error(), "CONNECTION_REFUSED") {
							refused.Add(1)
							break // a new connection
						}
						if inWindow.Load() && (errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err)) {
							stalled.Add(1)
							break
						}
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					ok.Add(1)
				}
				tr.Close()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	handingOver.Store(true)
	cancelNew, newDone := start()
	defer cancelNew()
	if err := testkit.Receive(t, oldDone, 15*time.Second, "exit of the old edge after the hand-over"); err != nil {
		t.Fatalf("old edge: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	cancelNew()
	if err := <-newDone; err != nil {
		t.Fatalf("new edge: %v", err)
	}
	t.Logf("HTTP/3 hand-over under load: %d requests ok, %d failed, %d handshakes refused, %d connections opened during the hand-over stalled",
		ok.Load(), failed.Load(), refused.Load(), stalled.Load())
	if refused.Load() > 4 {
		t.Errorf("%d handshakes refused, more than one for each client", refused.Load())
	}
	if stalled.Load() > 4 {
		t.Errorf("%d connections opened during the hand-over stalled, more than one for each client", stalled.Load())
	}
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (first: %v)", failed.Load(), firstErr.Load())
	}
}
