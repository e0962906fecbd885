package h2serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// testServer serves s on a loopback listener, over TLS (ALPN h2) when tlsOn,
// else cleartext with prior knowledge, and returns a client for it.
func testServer(t *testing.T, s *Server, tlsOn bool) (*http.Client, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var cfg *tls.Config
	tr := &http2.Transport{}
	scheme := "http"
	if tlsOn {
		ts := httptest.NewUnstartedServer(nil)
		ts.EnableHTTP2 = true
		ts.StartTLS()
		cfg = &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"h2"}}
		tr.TLSClientConfig = ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		tr.TLSClientConfig.NextProtos = []string{"h2"}
		ts.Close()
		scheme = "https"
	} else {
		tr.AllowHTTP = true
		tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if cfg != nil {
					tc := tls.Server(c, cfg)
					if err := tc.Handshake(); err != nil {
						c.Close()
						return
					}
					c = tc
				}
				s.ServeConn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		tr.CloseIdleConnections()
		s.Close()
		wg.Wait()
	})
	return &http.Client{Transport: tr}, scheme + "://" + ln.Addr().String()
}

func bothTransports(t *testing.T, f func(t *testing.T, tlsOn bool)) {
	for _, tlsOn := range []bool{false, true} {
		name := "h2c"
		if tlsOn {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) { f(t, tlsOn) })
	}
}

// TestRequestAndResponse: what the handler sees of a request (method,
// target, Host, fields, cookies joined, body, trailers, TLS, the context's
// values) and what the client sees of the response (status, fields, Date,
// body, trailers, declared and undeclared).
func TestRequestAndResponse(t *testing.T) {
	bothTransports(t, func(t *testing.T, tlsOn bool) {
		var hs *http.Server = &http.Server{}
		s := &Server{HTTPServer: hs}
		s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("reading the body: %v", err)
			}
			if r.Context().Value(http.ServerContextKey) != hs || r.Context().Value(http.LocalAddrContextKey) == nil {
				t.Errorf("the context lacks net/http's server values")
			}
			if (r.TLS != nil) != tlsOn {
				t.Errorf("TLS %v, want set %v", r.TLS, tlsOn)
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Trailer", "X-Sum")
			w.Header().Set("Connection", "close") // connection-specific: dropped
			w.WriteHeader(201)
			fmt.Fprintf(w, "%s %s %s %s|%s|%s|%d|%s|%s|%d", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Get("X-A"),
				r.Header.Get("Cookie"), len(body), r.Trailer.Get("X-Req-Trailer"), r.Proto, r.ContentLength)
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		})
		client, base := testServer(t, s, tlsOn)
		req, _ := http.NewRequest("POST", base+"/p/a?q=1", io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")))
		req.Host = "app.example.org"
		req.Header.Set("X-A", "a")
		req.Header.Add("Cookie", "a=1")
		req.Header.Add("Cookie", "b=2")
		req.Trailer = http.Header{"X-Req-Trailer": nil}
		req.ContentLength = -1
		go func() {}()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer.Set("X-Req-Trailer", "t") // sent at the body's end
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := "POST /p/a q=1 app.example.org|a|a=1; b=2|11||HTTP/2.0|-1"
		if resp.StatusCode != 201 || string(body) != want {
			t.Fatalf("%d %q, want 201 %q", resp.StatusCode, body, want)
		}
		if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Date") == "" || resp.Header.Get("Connection") != "" {
			t.Fatalf("response fields %v", resp.Header)
		}
		if resp.Trailer.Get("X-Sum") != "42" || resp.Trailer.Get("X-Late") != "late" {
			t.Fatalf("trailers %v, want X-Sum 42 and X-Late late", resp.Trailer)
		}
	})
}

// TestRequestTrailers: a request's declared trailers reach the handler at
// the body's end: the names before, the values once the body is read.
func TestRequestTrailers(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, declared := r.Trailer["X-T"]
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%v %q", declared, r.Trailer.Get("X-T"))
	})}
	client, base := testServer(t, s, false)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PUT", base+"/", pr)
	req.Trailer = http.Header{"X-T": nil}
	go func() {
		pw.Write([]byte("data"))
		req.Trailer.Set("X-T", "v")
		pw.Close()
	}()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `true "v"` {
		t.Fatalf("handler saw %s, want the name declared and the value at the end", body)
	}
}

// TestLargeBodiesBothWays: 8 MiB up and 8 MiB down on each of 4 streams at
// once, through the 1 MiB windows on each side.
func TestLargeBodiesBothWays(t *testing.T) {
	bothTransports(t, func(t *testing.T, tlsOn bool) {
		const size = 8 << 20
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil || n != size {
				t.Errorf("read %d bytes (%v), want %d", n, err, size)
			}
			w.Header().Set("Content-Length", fmt.Sprint(size))
			buf := make([]byte, 32<<10)
			for i := 0; i < size/len(buf); i++ {
				buf[0] = byte(i)
				if _, err := w.Write(buf); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})}
		client, base := testServer(t, s, tlsOn)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Post(base+"/", "application/octet-stream", io.LimitReader(rand.Reader, size))
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				n, err := io.Copy(io.Discard, resp.Body)
				if err != nil || n != size {
					t.Errorf("got %d bytes (%v), want %d", n, err, size)
				}
			}()
		}
		wg.Wait()
	})
}

// TestManyStreams: 200 concurrent requests on one connection, each
// answered with its own body.
func TestManyStreams(t *testing.T) {
	var conns atomic.Int32
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond)
			io.WriteString(w, r.URL.Path)
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
	}
	client, base := testServer(t, s, true)
	// One request first: until the server's SETTINGS arrive the client
	// assumes 100 concurrent streams and would dial a second connection.
	resp, err := client.Get(base + "/warm")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/%d", i)
			resp, err := client.Get(base + path)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != path {
				t.Errorf("%s answered %q", path, body)
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// TestFlushStreams: a flushed write reaches the client while the handler
// still runs (server-sent events).
func TestFlushStreams(t *testing.T) {
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: two\n\n")
	})}
	client, base := testServer(t, s, false)
	resp, err := client.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "data: one\n\n" {
		t.Fatalf("first read %q %v", buf[:n], err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "data: two\n\n" {
		t.Fatalf("then %q", rest)
	}
}

// TestClientResetCancelsContext: a stream the client cancels ends its
// request's context; the connection serves the next request.
func TestClientResetCancelsContext(t *testing.T) {
	canceled := make(chan struct{})
	started := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "ok")
			return
		}
		close(started)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(5 * time.Second):
		}
	})}
	client, base := testServer(t, s, false)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/slow", nil)
	go func() {
		<-started
		cancel()
	}()
	if _, err := client.Do(req); err == nil {
		t.Fatal("the canceled request succeeded")
	}
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("the handler's context was not canceled by the client's RST_STREAM")
	}
	resp, err := client.Get(base + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestHandlerPanics: a panic resets its stream (logged unless it is
// http.ErrAbortHandler) and the connection goes on.
func TestHandlerPanics(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/abort":
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			case "/boom":
				panic("boom")
			}
			io.WriteString(w, "ok")
		}),
		ErrorLog: newLogger(&logged, &mu),
	}
	client, base := testServer(t, s, false)
	for _, path := range []string{"/abort", "/boom"} {
		resp, err := client.Get(base + path)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var se http2.StreamError
		if !errors.As(err, &se) || se.Code != http2.ErrCodeInternal {
			t.Fatalf("%s: %v, want a stream reset with INTERNAL_ERROR", path, err)
		}
	}
	resp, err := client.Get(base + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "panic serving"); n != 1 || !strings.Contains(logged.String(), "boom") {
		t.Fatalf("log %q, want the one panic that is not ErrAbortHandler", logged.String())
	}
}

// TestHeadAndNoContent: HEAD and 204 answers carry no body, and a body
// write gets http.ErrBodyNotAllowed for 204.
func TestHeadAndNoContent(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(204)
			if _, err := w.Write([]byte("x")); err != http.ErrBodyNotAllowed {
				t.Errorf("write on 204: %v", err)
			}
			return
		}
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})}
	client, base := testServer(t, s, false)
	resp, err := client.Head(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ContentLength != 5 || len(body) != 0 {
		t.Fatalf("HEAD: length %d body %q", resp.ContentLength, body)
	}
	resp, err = client.Get(base + "/204")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("%d, want 204", resp.StatusCode)
	}
}

// TestExpectContinue: a request with Expect: 100-continue gets 100 at its
// body's first read, and its body.
func TestExpectContinue(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})}
	client, base := testServer(t, s, false)
	req, _ := http.NewRequest("PUT", base+"/", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "payload" {
		t.Fatalf("%q", body)
	}
}

// TestHeaderListTooLong: a header list over MaxHeaderBytes is answered
// 431 without the handler, and the connection goes on.
func TestHeaderListTooLong(t *testing.T) {
	s := &Server{MaxHeaderBytes: 4 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/next" {
			t.Error("the handler ran")
		}
	})}
	addr := serveOne(t, s)
	c, fr := rawConn(t, addr)
	fields := []string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x"}
	for i := range 8 {
		fields = append(fields, fmt.Sprintf("x-big-%d", i), strings.Repeat("a", 1<<10))
	}
	writeRequest(t, fr, 1, true, fields...)
	awaitFrame(t, c, fr, "431", func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		if ok && h.PseudoValue("status") != "431" {
			t.Fatalf("status %s, want 431", h.PseudoValue("status"))
		}
		return ok
	})
	writeRequest(t, fr, 3, true, ":method", "GET", ":scheme", "http", ":path", "/next", ":authority", "x")
	awaitFrame(t, c, fr, "200", func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamID == 3 && h.PseudoValue("status") == "200"
	})
}

// TestBodyReadDeadline: http.ResponseController's read deadline ends a
// body read that waits for the client.
func TestBodyReadDeadline(t *testing.T) {
	got := make(chan error, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Errorf("SetReadDeadline: %v", err)
		}
		_, err := io.ReadAll(r.Body)
		got <- err
		w.WriteHeader(408)
	})}
	client, base := testServer(t, s, false)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("PUT", base+"/", pr)
	go func() { pw.Write([]byte("start")) }()
	go client.Do(req)
	select {
	case err := <-got:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want the deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the body read did not end at its deadline")
	}
}

// TestShutdownFinishesStreams: Shutdown sends GOAWAY, lets the stream in
// flight finish, then closes the connection and returns.
func TestShutdownFinishesStreams(t *testing.T) {
	started := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})}
	client, base := testServer(t, s, false)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Get(base + "/")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	r := <-done
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in flight: %q %v", r.body, r.err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("Shutdown returned after %v, before the stream finished", d)
	}
	if n := s.Open(); n != 0 {
		t.Fatalf("%d connections open after Shutdown", n)
	}
}

// TestIdleTimeout: a connection without a stream for IdleTimeout gets a
// GOAWAY and is closed; one with a stream running is not.
func TestIdleTimeout(t *testing.T) {
	s := &Server{IdleTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond) // longer than the idle timeout
		io.WriteString(w, "ok")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			s.ServeConn(c)
		}
	}()
	c, fr := rawConn(t, ln.Addr().String())
	writeRequest(t, fr, 1, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x")
	var gotData, gotGoAway bool
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for !gotGoAway {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			gotData = gotData || len(f.Data()) > 0
		case *http2.GoAwayFrame:
			gotGoAway = true
			if f.ErrCode != http2.ErrCodeNo || f.LastStreamID != 1 {
				t.Fatalf("GOAWAY %v last %d", f.ErrCode, f.LastStreamID)
			}
		}
	}
	if !gotData || !gotGoAway {
		t.Fatalf("data %v goaway %v: want the response, then the idle GOAWAY", gotData, gotGoAway)
	}
}

// TestWriteTimeoutWindow: a client that keeps its window shut gets the
// stream reset after WriteTimeout, and the handler's write fails.
func TestWriteTimeoutWindow(t *testing.T) {
	writeErr := make(chan error, 1)
	s := &Server{WriteTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(make([]byte, 100<<10)) // more than the 64 KiB initial window
		writeErr <- err
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			s.ServeConn(c)
		}
	}()
	_, fr := rawConn(t, ln.Addr().String())
	writeRequest(t, fr, 1, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x")
	select {
	case err := <-writeErr:
		if err == nil {
			t.Fatal("the write past the window succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write waited past WriteTimeout")
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no RST_STREAM: %v", err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			if rst.ErrCode != http2.ErrCodeCancel {
				t.Fatalf("RST_STREAM %v, want CANCEL", rst.ErrCode)
			}
			return
		}
	}
}
