package h1serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs s on a loopback listener until the test ends and returns its
// address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.ServeConn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// echo answers with the method, the path and the body it read.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
})

func readResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func TestKeepAliveWithNetHTTPClient(t *testing.T) {
	var news atomic.Int32
	s := &Server{Handler: echo, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			news.Add(1)
		}
	}}
	addr := serve(t, s)
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := range 20 {
		body := strings.Repeat("x", i*300)
		resp, err := client.Post("http://"+addr+fmt.Sprintf("/p/%d?q=%d", i, i), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /p/%d?q=%d %s", i, i, body); string(b) != want || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		if len(b) <= stageSize && resp.ContentLength != int64(len(b)) || len(b) > stageSize && resp.ContentLength != -1 {
			t.Fatalf("body of %d bytes sent with Content-Length %d (-1: chunked)", len(b), resp.ContentLength)
		}
		if resp.Header.Get("Date") == "" {
			t.Fatal("no Date field")
		}
	}
	if n := news.Load(); n != 1 {
		t.Fatalf("%d connections for 20 keep-alive requests, want 1", n)
	}
}

// TestPipelining: requests sent back to back are answered in order, each
// after the one before has been answered.
func TestPipelining(t *testing.T) {
	var active atomic.Int32
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if active.Add(1) != 1 {
			t.Error("two requests of one connection served at once")
		}
		defer active.Add(-1)
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		echo(w, r)
	})}
	c := dial(t, serve(t, s))
	req := "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"GET /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, want := range []string{"GET /slow ", "POST /two hello", "POST /three abc", "GET /four "} {
		if _, got := readResponse(t, br, "GET"); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close, read %v, want EOF", err)
	}
}

func TestExpectContinue(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		echo(w, r)
	})})
	t.Run("read", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("first line %q, %v; want 100 Continue", line, err)
		}
		if l, _ := br.ReadString('\n'); l != "\r\n" {
			t.Fatalf("100 Continue followed by %q", l)
		}
		io.WriteString(c, "hello")
		if resp, got := readResponse(t, br, "PUT"); got != "PUT /up hello" || resp.Close {
			t.Fatalf("got %q, close %v", got, resp.Close)
		}
	})
	t.Run("not read", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "PUT /ignore HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		br := bufio.NewReader(c)
		resp, _ := readResponse(t, br, "PUT")
		if resp.StatusCode != http.StatusForbidden || !resp.Close {
			t.Fatalf("status %d, close %v; want 403 and close (the body never came)", resp.StatusCode, resp.Close)
		}
	})
	t.Run("other expectation", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "PUT /up HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 5\r\n\r\n")
		if resp, _ := readResponse(t, bufio.NewReader(c), "PUT"); resp.StatusCode != http.StatusExpectationFailed {
			t.Fatalf("status %d, want 417", resp.StatusCode)
		}
	})
}

func TestHTTP10(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
			return
		}
		echo(w, r)
	})})
	t.Run("no keep-alive", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
		all, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(all), "HTTP/1.0 200 OK\r\n") || !strings.Contains(string(all), "Connection: close\r\n") ||
			!strings.HasSuffix(string(all), "GET /a ") {
			t.Fatalf("response %q: want one HTTP/1.0 answer and a close", all)
		}
	})
	t.Run("keep-alive", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
		br := bufio.NewReader(c)
		resp, got := readResponse(t, br, "GET")
		if got != "GET /a " || resp.Close || resp.Header.Get("Connection") != "keep-alive" {
			t.Fatalf("first: %q close %v Connection %q", got, resp.Close, resp.Header.Get("Connection"))
		}
		if resp, got := readResponse(t, br, "GET"); got != "GET /b " || !resp.Close {
			t.Fatalf("second: %q close %v", got, resp.Close)
		}
	})
	t.Run("streamed", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		all, _ := io.ReadAll(c)
		head, body, _ := strings.Cut(string(all), "\r\n\r\n")
		if strings.Contains(head, "chunked") || strings.Contains(head, "Content-Length") || body != "part one,part two" {
			t.Fatalf("response %q: want a body delimited by the close", all)
		}
	})
}

func TestChunkedResponseAndTrailers(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(200)
		w.Write(b)
		w.(http.Flusher).Flush()
		w.Write([]byte(strings.Repeat("y", 5000)))
		w.Header().Set("X-Sum", r.Trailer.Get("X-Req"))
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})})
	c := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Req\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Req: sum1\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("Transfer-Encoding %v, want chunked", resp.TransferEncoding)
	}
	if string(b) != "abcde"+strings.Repeat("y", 5000) {
		t.Fatalf("body %q...", b[:min(20, len(b))])
	}
	if resp.Trailer.Get("X-Sum") != "sum1" || resp.Trailer.Get("X-Late") != "late" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}

func TestBodylessResponses(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "11")
		}
		_, err := io.WriteString(w, "hello world")
		if r.Method != http.MethodHead && r.URL.Path != "/" && !errors.Is(err, http.ErrBodyNotAllowed) {
			t.Errorf("%s: write %v, want ErrBodyNotAllowed", r.URL.Path, err)
		}
	})})
	c := dial(t, addr)
	io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, b := readResponse(t, br, "HEAD"); resp.ContentLength != 11 || b != "" {
		t.Fatalf("HEAD: length %d body %q", resp.ContentLength, b)
	}
	for _, code := range []int{204, 304} {
		if resp, b := readResponse(t, br, "GET"); resp.StatusCode != code || b != "" || len(resp.TransferEncoding) > 0 {
			t.Fatalf("%d: got %d %q %v", code, resp.StatusCode, b, resp.TransferEncoding)
		}
	}
	if _, b := readResponse(t, br, "GET"); b != "hello world" {
		t.Fatalf("after the bodyless ones: %q", b)
	}
}

// TestHijackBufferedBytes: bytes the client sent after the request are in
// the hijacker's reader.
func TestHijackBufferedBytes(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 9)
		if _, err := io.ReadFull(brw, buf); err != nil {
			t.Error(err)
			return
		}
		conn.Write(buf)
	})})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "late")
	got := make([]byte, 9)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "earlylate" {
		t.Fatalf("tunnel carried %q, %v", got, err)
	}
}

func TestRefusals(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 10)
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
	}), MaxHeaderBytes: 8 << 10})
	for _, tt := range []struct {
		name, req string
		want      int
	}{
		{"request line too long", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n", 431},
		{"head too large for the small reader only", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", 200},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"bad chunk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 413},
		{"body over the limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n01234567890123456789", 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			io.WriteString(c, tt.req)
			resp, _ := readResponse(t, bufio.NewReader(c), "GET")
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != 200 && tt.want != 413 && !resp.Close {
				t.Fatal("refused without Connection: close")
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	addr := serve(t, &Server{Handler: echo, ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	t.Run("header", func(t *testing.T) {
		c := dial(t, addr)
		start := time.Now()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n")
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %v, want EOF", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("idle", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		br := bufio.NewReader(c)
		readResponse(t, br, "GET")
		time.Sleep(150 * time.Millisecond) // past the header timeout, within the idle one
		io.WriteString(c, "GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, b := readResponse(t, br, "GET"); b != "GET /again " {
			t.Fatalf("second request: %q", b)
		}
		start := time.Now()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("read %v, want EOF", err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
			t.Fatalf("idle connection closed after %v, want about 200ms", d)
		}
	})
}

// TestLargeBodiesStream: 100 MiB each way pass through without being
// stored: the server allocates a small fraction of them.
func TestLargeBodiesStream(t *testing.T) {
	const size = 100 << 20
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n, err)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		buf := make([]byte, 32<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() {
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
		buf := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(buf) {
			c.Write(buf)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	}()
	br := bufio.NewReader(c)
	if _, b := readResponse(t, br, "POST"); b != fmt.Sprint(size, nil) {
		t.Fatalf("upload: %q", b)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	if n != size {
		t.Fatalf("download: %d bytes", n)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("200 MiB through the server allocated %d bytes, want a small fraction", alloc)
	}
}

func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "done")
	})}
	addr := serve(t, s)
	idle := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	idleBr := bufio.NewReader(idle)
	readResponse(t, idleBr, "GET")
	busy := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	for s.Open() != 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	done := make(chan error)
	go func() { done <- s.Shutdown(context.Background()) }()
	if _, err := idleBr.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want closed", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	resp, b := readResponse(t, bufio.NewReader(busy), "GET")
	if b != "done" || !resp.Close {
		t.Fatalf("request in flight: %q close %v; want done and close", b, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestClientGoneCancels: a request whose client closes while it runs sees
// its context canceled.
func TestClientGoneCancels(t *testing.T) {
	canceled := make(chan struct{})
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(5 * time.Second):
		}
	})})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("context not canceled after the client closed")
	}
}

func TestH2CHandOver(t *testing.T) {
	got := make(chan string, 1)
	addr := serve(t, &Server{Handler: echo, H2C: func(c net.Conn) {
		defer c.Close()
		b := make([]byte, len(h2Preface)+4)
		io.ReadFull(c, b)
		got <- string(b)
	}})
	c := dial(t, addr)
	io.WriteString(c, h2Preface)
	time.Sleep(10 * time.Millisecond)
	io.WriteString(c, "more")
	if b := <-got; b != h2Preface+"more" {
		t.Fatalf("H2C read %q", b)
	}
	// "P" alone is an HTTP/1 method's start
	c2 := dial(t, addr)
	io.WriteString(c2, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
	if _, b := readResponse(t, bufio.NewReader(c2), "POST"); b != "POST / x" {
		t.Fatalf("POST: %q", b)
	}
}

func TestRequestFields(t *testing.T) {
	got := make(chan *http.Request, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
	})})
	c := dial(t, addr)
	io.WriteString(c, "GET /a%2Fb/c?x=1&y HTTP/1.1\r\nhost: Example.org:8080\r\nx-lower: v1\r\nX-Lower: v2\r\nuser-agent: t\r\nCookie: a=b\r\n\r\n")
	readResponse(t, bufio.NewReader(c), "GET")
	r := <-got
	if r.Host != "Example.org:8080" || r.URL.Path != "/a/b/c" || r.URL.RawPath != "/a%2Fb/c" || r.URL.RawQuery != "x=1&y" ||
		r.RequestURI != "/a%2Fb/c?x=1&y" || r.Method != "GET" || r.Proto != "HTTP/1.1" {
		t.Fatalf("request %+v URL %+v", r, r.URL)
	}
	if v := r.Header["X-Lower"]; len(v) != 2 || v[0] != "v1" || v[1] != "v2" {
		t.Fatalf("X-Lower %q", v)
	}
	if r.Header.Get("User-Agent") != "t" || r.Header.Get("Host") != "" || r.RemoteAddr != c.LocalAddr().String() {
		t.Fatalf("header %v remote %s", r.Header, r.RemoteAddr)
	}
	if a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr); a == nil || a.String() != c.RemoteAddr().String() {
		t.Fatalf("local address %v", a)
	}
}

// TestRequestURLAgreesWithNetURL: the fast path builds the URL that
// url.ParseRequestURI would.
func TestRequestURLAgreesWithNetURL(t *testing.T) {
	for _, target := range []string{
		"/", "/a/b", "/a/b?x=1&y=2", "/a?", "/a%20b", "/a%2Fb?q=%20", "/a|b", "/~user/$x&y+z,w:v;u=t@s",
		"/a{b}", "/a^b", "/[x]", "/a'b", "/a!b", "/a*b", "/a(b)", "/path/with/./dots/../x",
	} {
		addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			want, err := url.ParseRequestURI(r.RequestURI)
			if err != nil {
				t.Errorf("%s: net/url refuses: %v", target, err)
				return
			}
			if *want != *r.URL {
				t.Errorf("%s: URL %#v, net/url gives %#v", target, *r.URL, *want)
			}
		})})
		c := dial(t, addr)
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, _ := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 200 {
			t.Errorf("%s: status %d", target, resp.StatusCode)
		}
	}
}

// TestTrailersWithContentLength: declared trailers need the chunked
// coding, so a Content-Length beside them is dropped, never sent with it.
func TestTrailersWithContentLength(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "hello")
		w.Header().Set("X-Sum", "5")
	})})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "hello" || resp.ContentLength != -1 || resp.Trailer.Get("X-Sum") != "5" {
		t.Fatalf("body %q length %d trailer %v", b, resp.ContentLength, resp.Trailer)
	}
}

// TestAnswerBeforeTheBody: a handler that answers without reading a body
// larger than what is dropped for keep-alive closes the connection, and
// the client, still sending, finishes and reads the answer (no reset).
func TestAnswerBeforeTheBody(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})})
	for range 5 {
		c := dial(t, addr)
		const size = 4 << 20
		sent := make(chan error, 1)
		go func() {
			_, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
			if err == nil {
				_, err = c.Write(make([]byte, size))
			}
			sent <- err
		}()
		if err := <-sent; err != nil {
			t.Fatalf("sending the body: %v", err)
		}
		resp, _ := readResponse(t, bufio.NewReader(c), "POST")
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Fatalf("status %d close %v", resp.StatusCode, resp.Close)
		}
	}
}

// TestFirstBytesAnyConnection: the first bytes of each request are read
// around the reader on a TCP connection (one read(2) into a pooled reader)
// and one byte at a time on any other net.Conn; either way a request whose
// head comes in pieces, a pipelined pair and keep-alive requests are
// answered in order.
func TestFirstBytesAnyConnection(t *testing.T) {
	exchange := func(t *testing.T, c net.Conn) {
		br := bufio.NewReader(c)
		io.WriteString(c, "G")
		time.Sleep(20 * time.Millisecond) // the first byte alone, then the rest
		io.WriteString(c, "ET /one HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != "GET /one " {
			t.Fatalf("split head: %q", body)
		}
		go io.WriteString(c, "GET /two HTTP/1.1\r\nHost: a\r\n\r\nPOST /three HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
		for _, want := range []string{"GET /two ", "POST /three abc"} {
			if _, body := readResponse(t, br, "GET"); body != want {
				t.Fatalf("pipelined: %q, want %q", body, want)
			}
		}
	}
	t.Run("tcp", func(t *testing.T) {
		exchange(t, dial(t, serve(t, &Server{Handler: echo})))
	})
	t.Run("pipe", func(t *testing.T) {
		s := &Server{Handler: echo}
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeConn(server)
		}()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		exchange(t, client)
		client.Close()
		<-done
	})
}

type goneFlag chan struct{}

func (g goneFlag) ClientGone() { close(g) }

// TestWatchClient: a watcher registered by the handler is told when the
// client closes its connection; a context this package did not make
// watches nothing.
func TestWatchClient(t *testing.T) {
	if WatchClient(context.Background(), make(goneFlag)) {
		t.Fatal("WatchClient accepted a context of no request")
	}
	told := make(chan bool, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := make(goneFlag)
		if !WatchClient(r.Context(), g) {
			t.Error("WatchClient refused a request's context")
		}
		select {
		case <-g:
			told <- r.Context().Err() != nil
		case <-time.After(5 * time.Second):
			told <- false
		}
	})})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(2 * watchDelay)
	c.Close()
	if !<-told {
		t.Fatal("the watcher was not told the client left, or before its context was canceled")
	}
}

// TestLongRequestOutlivesWaitDeadlines: a request without a body whose
// head came in one read runs past the idle and header timeouts of the wait
// before it (left on the connection until the watch reads) without its
// context being canceled, on the first request and on a keep-alive one.
func TestLongRequestOutlivesWaitDeadlines(t *testing.T) {
	const timeout = 100 * time.Millisecond
	canceled := make(chan bool, 2)
	addr := serve(t, &Server{ReadHeaderTimeout: timeout, IdleTimeout: timeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(3 * timeout)
			canceled <- r.Context().Err() != nil
			io.WriteString(w, "done")
		})})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for i := range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != "done" {
			t.Fatalf("request %d: %q", i, body)
		}
		if <-canceled {
			t.Fatalf("request %d: its context was canceled while the client waited", i)
		}
	}
}

// TestConnContextValues: a request's context carries the server, the local
// address and what ConnContext added over them, and is canceled when the
// handler returns while the connection's stays alive.
func TestConnContextValues(t *testing.T) {
	type key struct{}
	hs := &http.Server{}
	got := make(chan context.Context, 2)
	s := &Server{
		HTTPServer: hs,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if ctx.Value(http.ServerContextKey) != hs {
				t.Error("ConnContext's parent has no ServerContextKey")
			}
			return context.WithValue(ctx, key{}, c.RemoteAddr().String())
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Context() }),
	}
	addr := serve(t, s)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, br, "GET")
		ctx := <-got
		if ctx.Value(http.ServerContextKey) != hs {
			t.Fatalf("ServerContextKey %v", ctx.Value(http.ServerContextKey))
		}
		if a, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr); a == nil || a.String() != c.RemoteAddr().String() {
			t.Fatalf("LocalAddrContextKey %v", a)
		}
		if v := ctx.Value(key{}); v != c.LocalAddr().String() {
			t.Fatalf("ConnContext's value %v", v)
		}
		if ctx.Value(struct{ x int }{}) != nil {
			t.Fatal("an unknown key has a value")
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("request context not canceled after its handler returned")
		}
	}
}
