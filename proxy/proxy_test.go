package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// edge is a proxy serving on a real loopback listener.
type edge struct {
	p      *Proxy
	srv    *Server
	url    string
	addr   string
	client *http.Client
}

func startEdge(t testing.TB, cfg route.Config) *edge {
	t.Helper()
	return startEdgeWith(t, cfg, Options{DialTimeout: time.Second})
}

// startEdgeWith is startEdge with options; logger and registry are the test's.
func startEdgeWith(t testing.TB, cfg route.Config, o Options) *edge {
	t.Helper()
	o.Logger, o.Registerer = zaptest.NewLogger(t), prometheus.NewRegistry()
	p := New(o)
	p.Update(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.NewServer("http", ServerOptions{})
	go srv.Serve(ln)
	e := &edge{p: p, srv: srv, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		p.Close()
		e.client.CloseIdleConnections()
	})
	return e
}

// do sends a request for host+path through the edge and reads the answer.
func (e *edge) do(t *testing.T, method, host, path string, body io.Reader) (*http.Response, string) {
	t.Helper()
	resp := testkit.Request(t, e.client, method, e.url+path, host, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading body: %v", method, host, path, err)
	}
	return resp, string(b)
}

func TestRoutingByHostAndPath(t *testing.T) {
	web, api, v2, wild, def := testkit.Backend(t, "web"), testkit.Backend(t, "api"), testkit.Backend(t, "v2"), testkit.Backend(t, "wild"), testkit.Backend(t, "default")
	strip := testkit.Route("strip", []string{"app.example.org"}, "/static", testkit.Addr(web))
	strip.Strip = true
	fallback := testkit.Route("fallback", nil, "/", testkit.Addr(def))
	fallback.Default = true
	e := startEdge(t, route.Config{Routes: []route.Route{
		testkit.Route("web", []string{"app.example.org", "www.example.org"}, "/", testkit.Addr(web)),
		testkit.Route("api", []string{"app.example.org"}, "/api", testkit.Addr(api)),
		testkit.Route("v2", []string{"app.example.org"}, "/api/v2", testkit.Addr(v2)),
		testkit.Route("wild", []string{"*.example.org"}, "/", testkit.Addr(wild)),
		strip, fallback,
	}})
	tests := []struct {
		host, path string
		code       int
		want       string
	}{
		{"app.example.org", "/", 200, "web GET /"},
		{"APP.Example.org:8080", "/x?q=1", 200, "web GET /x?q=1"},
		{"www.example.org", "/api", 200, "web GET /api"},
		{"app.example.org", "/api", 200, "api GET /api"},
		{"app.example.org", "/api/users", 200, "api GET /api/users"},
		{"app.example.org", "/apix", 200, "web GET /apix"},
		{"app.example.org", "/api/v2/x", 200, "v2 GET /api/v2/x"},
		{"app.example.org", "/api/v2/../v1", 200, "api GET /api/v1"},
		{"app.example.org", "//api//v2", 200, "v2 GET /api/v2"},
		{"app.example.org", "/static/app.js", 200, "web GET /app.js"},
		{"app.example.org", "/static", 200, "web GET /"},
		{"shop.example.org", "/", 200, "wild GET /"},
		{"a.b.example.org", "/cart", 200, "wild GET /cart"},
		{"example.org", "/", 200, "default GET /"},
		{"other.net", "/z", 200, "default GET /z"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			resp, body := e.do(t, "GET", tt.host, tt.path, nil)
			if resp.StatusCode != tt.code || body != tt.want {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.code, tt.want)
			}
		})
	}
}

func TestNoRouteIs404(t *testing.T) {
	web := testkit.Backend(t, "web")
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/api", testkit.Addr(web))}})
	for _, tt := range []struct{ host, path string }{{"other.org", "/api"}, {"app.example.org", "/"}, {"app.example.org", "/apix"}} {
		if resp, _ := e.do(t, "GET", tt.host, tt.path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s%s: got %d, want 404", tt.host, tt.path, resp.StatusCode)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		got <- h
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
	}))
	defer b.Close()
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}})
	req, _ := http.NewRequest("GET", e.url+"/", nil)
	req.Host = "app.example.org"
	req.Header.Set("Connection", "X-Custom-Hop")
	req.Header.Set("X-Custom-Hop", "1")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Request-Id", "abc-123")
	req.Header.Set("Te", "trailers")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	for k, want := range map[string]string{
		"Host": "app.example.org", "X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": "app.example.org", "X-Request-Id": "abc-123", "Te": "trailers",
		"X-Custom-Hop": "", "Proxy-Authorization": "", "Connection": "",
	} {
		if h.Get(k) != want {
			t.Errorf("upstream %s = %q, want %q", k, h.Get(k), want)
		}
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", resp.Header)
	}
	if resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("X-Request-Id = %q, want it echoed", resp.Header.Get("X-Request-Id"))
	}
}

func TestWebSocketEcho(t *testing.T) {
	b := testkit.WebSocketEcho(t, "echo: ")
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("ws", []string{"ws.example.org"}, "/", testkit.Addr(b))}})
	d := websocket.Dialer{NetDial: func(_, _ string) (net.Conn, error) { return net.Dial("tcp", e.addr) }}
	c, resp, err := d.Dial("ws://ws.example.org/chat", nil)
	if err != nil {
		t.Fatalf("dial through edge: %v", err)
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i := range 100 {
		msg := fmt.Sprintf("message %d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q", got)
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}

func TestServerSentEventsStreamIncrementally(t *testing.T) {
	next := make(chan struct{})
	b := testkit.EventStream(t, 3, next)
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("sse", []string{"sse.example.org"}, "/", testkit.Addr(b))}})
	resp := testkit.Request(t, e.client, "GET", e.url+"/events", "sse.example.org", nil)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		// The backend sends the next event only after we read this one: a
		// buffering proxy would deadlock here until the timeout.
		line, err := readWithTimeout(rd, 2*time.Second)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: event %d\n", i); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		rd.ReadString('\n')
		next <- struct{}{}
	}
}

func readWithTimeout(rd *bufio.Reader, d time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() { s, err := rd.ReadString('\n'); ch <- result{s, err} }()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(d):
		return "", errors.New("event not delivered: the proxy buffers the stream")
	}
}

func TestH2CPriorKnowledge(t *testing.T) {
	protos := make(chan string, 2)
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
		w.Header().Set("Trailer", "Grpc-Status")
		io.WriteString(w, "hello")
		w.Header().Set("Grpc-Status", "0")
	}))
	b.Config.Protocols = new(http.Protocols)
	b.Config.Protocols.SetUnencryptedHTTP2(true)
	b.Start()
	defer b.Close()
	r := testkit.Route("grpc", []string{"grpc.example.org"}, "/", testkit.Addr(b))
	r.H2C = true
	e := startEdge(t, route.Config{Routes: []route.Route{r}})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", e.url+"/svc/Method", strings.NewReader("x"))
	req.Host = "grpc.example.org"
	req.Header.Set("Te", "trailers")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || string(body) != "hello" {
		t.Fatalf("client got %s %q", resp.Proto, body)
	}
	if got := <-protos; got != "HTTP/2.0" {
		t.Errorf("backend saw %s, want HTTP/2.0 (h2c upstream)", got)
	}
	if resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("trailer Grpc-Status = %q, want 0", resp.Trailer.Get("Grpc-Status"))
	}
}

// pattern is an endless deterministic byte stream.
type pattern struct{ n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.n*7 + p.n>>8)
		p.n++
	}
	return len(b), nil
}

// heapWatch samples the heap while a transfer runs and reports the peak above
// the starting point.
func heapWatch() (stop func() uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base && m.HeapAlloc-base > peak.Load() {
				peak.Store(m.HeapAlloc - base)
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

func TestLargeUploadAndDownloadStream(t *testing.T) {
	const size = 100 << 20
	want := sha256.New()
	io.Copy(want, io.LimitReader(&pattern{}, size))
	wantSum := fmt.Sprintf("%x", want.Sum(nil))
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, io.LimitReader(&pattern{}, size))
	}))
	defer b.Close()
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("big", []string{"big.example.org"}, "/", testkit.Addr(b))}})

	stop := heapWatch()
	resp, body := e.do(t, "POST", "big.example.org", "/upload", io.LimitReader(&pattern{}, size))
	if resp.StatusCode != 200 || body != fmt.Sprintf("%d %s", size, wantSum) {
		t.Fatalf("upload: %d %q", resp.StatusCode, body)
	}
	resp = testkit.Request(t, e.client, "GET", e.url+"/download", "big.example.org", nil)
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || fmt.Sprintf("%x", h.Sum(nil)) != wantSum {
		t.Fatalf("download: %d bytes, err %v, sum mismatch %v", n, err, fmt.Sprintf("%x", h.Sum(nil)) != wantSum)
	}
	if peak := stop(); peak > 32<<20 {
		t.Errorf("heap grew by %d MiB during 100 MiB transfers: bodies are buffered", peak>>20)
	}
}

func TestRetryOnRefusedConnect(t *testing.T) {
	live := testkit.Backend(t, "live")
	r := testkit.Route("web", []string{"app.example.org"}, "/", testkit.UnusedAddr(t), testkit.UnusedAddr(t), testkit.Addr(live))
	e := startEdge(t, route.Config{Routes: []route.Route{r}})
	for i := range 20 {
		method, body := "GET", io.Reader(nil)
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("payload") // not idempotent, has a body: still safe, nothing was sent
		}
		resp, got := e.do(t, method, "app.example.org", "/", body)
		if resp.StatusCode != 200 || !strings.HasPrefix(got, "live ") {
			t.Fatalf("request %d (%s): %d %q", i, method, resp.StatusCode, got)
		}
	}
}

func TestErrorStatuses(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	// hangup reads the request and closes the connection without answering.
	hangupLn, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hangupLn.Close()
	go func() {
		for {
			c, err := hangupLn.Accept()
			if err != nil {
				return
			}
			go func() { bufio.NewReader(c).ReadString('\n'); c.Close() }()
		}
	}()
	timeout := testkit.Route("slow", []string{"slow.example.org"}, "/", testkit.Addr(slow))
	timeout.Timeout = 100 * time.Millisecond
	e := startEdge(t, route.Config{Routes: []route.Route{
		testkit.Route("down", []string{"down.example.org"}, "/", testkit.UnusedAddr(t)),
		testkit.Route("empty", []string{"empty.example.org"}, "/"),
		testkit.Route("hangup", []string{"hangup.example.org"}, "/", hangupLn.Addr().String()),
		timeout,
	}})
	tests := []struct {
		host   string
		method string
		want   int
	}{
		{"down.example.org", "GET", http.StatusBadGateway},
		{"hangup.example.org", "GET", http.StatusBadGateway},
		{"hangup.example.org", "POST", http.StatusBadGateway},
		{"empty.example.org", "GET", http.StatusServiceUnavailable},
		{"slow.example.org", "GET", http.StatusGatewayTimeout},
		{"nowhere.example.org", "GET", http.StatusNotFound},
	}
	for _, tt := range tests {
		if resp, _ := e.do(t, tt.method, tt.host, "/", nil); resp.StatusCode != tt.want {
			t.Errorf("%s %s: got %d, want %d", tt.method, tt.host, resp.StatusCode, tt.want)
		}
	}
}

func TestOversizedRequests(t *testing.T) {
	b := testkit.Backend(t, "b")
	p := New(Options{Registerer: prometheus.NewRegistry()})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{testkit.Route("b", []string{"b.example.org"}, "/", testkit.Addr(b))}})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = p.NewServer("http", ServerOptions{MaxBodyBytes: 1024, MaxHeaderBytes: 4096}).Server
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(strings.Repeat("x", 2048)))
	req.Host = "b.example.org"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 KiB body over a 1 KiB limit: got %d, want 413", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/", nil)
	req.Host = "b.example.org"
	req.Header.Set("X-Big", strings.Repeat("y", 8192))
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KiB header over a 4 KiB limit: got %d, want 431", resp.StatusCode)
	}
	srv.Client().CloseIdleConnections()
}

func TestTableSwapUnderLoadLosesNothing(t *testing.T) {
	a, b := testkit.Backend(t, "a"), testkit.Backend(t, "b")
	cfgA := route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(a))}}
	cfgB := route.Config{Routes: []route.Route{
		testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b)),
		testkit.Route("other", []string{"other.example.org"}, "/", testkit.Addr(a)),
	}}
	e := startEdge(t, cfgA)
	var ok, failed atomic.Int64
	// At least 2 s and 100 swaps under load; a starved machine takes longer
	// for the swaps, never more than 30 s.
	const minSwaps = 100
	minEnd, hardEnd := time.Now().Add(2*time.Second), time.Now().Add(30*time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000 && time.Now().Before(hardEnd); n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", e.url+"/", nil)
				req.Host = "app.example.org"
				resp, err := e.client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	swaps := 0
	for (swaps < minSwaps || time.Now().Before(minEnd)) && time.Now().Before(hardEnd) {
		if swaps%2 == 0 {
			e.p.Update(cfgB)
		} else {
			e.p.Update(cfgA)
		}
		swaps++
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d swaps, %d requests ok, %d failed", swaps, ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() == 0 || swaps < minSwaps {
		t.Fatalf("%d swaps, %d ok, %d failed; want zero failures", swaps, ok.Load(), failed.Load())
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	started := make(chan struct{})
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	defer b.Close()
	p := New(Options{Registerer: prometheus.NewRegistry()})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{testkit.Route("slow", []string{"slow.example.org"}, "/", testkit.Addr(b))}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := p.NewServer("http", ServerOptions{})
	go srv.Serve(ln)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
		req.Host = "slow.example.org"
		resp, err := client.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(body), err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if r := <-res; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("listener still accepting after shutdown")
	}
}

// TestEjectedEndpointsAreTriedRatherThan503: a task that refused the first
// connection (its process was not listening yet) is ejected; when every
// endpoint is ejected the least ejected one is tried anyway, so the route
// answers as soon as the task listens instead of 503 for the ejection window.
func TestEjectedEndpointsAreTriedRatherThan503(t *testing.T) {
	a := testkit.UnusedAddr(t)
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("late", []string{"late.example.org"}, "/", a)}})
	if resp, _ := e.do(t, "GET", "late.example.org", "/", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("nothing listening: %d, want 502", resp.StatusCode)
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }), ReadHeaderTimeout: time.Second}
	go s.Serve(ln)
	defer s.Close()
	if resp, body := e.do(t, "GET", "late.example.org", "/", nil); resp.StatusCode != 200 || body != "up" {
		t.Fatalf("task listening now, still ejected: %d %q", resp.StatusCode, body)
	}
}
