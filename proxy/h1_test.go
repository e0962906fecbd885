package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func newH1(t *testing.T) *h1Transport {
	t.Helper()
	tr := &h1Transport{dialer: &net.Dialer{Timeout: time.Second}, fallback: &http.Transport{}, maxIdle: 4, idleTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func h1Get(t *testing.T, tr http.RoundTripper, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// countConns is a test server that counts the connections it accepted.
func countConns(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &n
}

func TestH1ReusesConnections(t *testing.T) {
	s, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
			return
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
	tr := newH1(t)
	for i := range 10 {
		method, body := "GET", io.Reader(nil)
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("payload")
		}
		if _, got := h1Get(t, tr, method, s.URL+"/x", body); got != method+" /x" {
			t.Fatalf("got %q", got)
		}
	}
	if _, got := h1Get(t, tr, "GET", s.URL+"/chunked", nil); got != "ab" {
		t.Fatalf("chunked: %q", got)
	}
	if resp, got := h1Get(t, tr, "HEAD", s.URL+"/x", nil); got != "" || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, got)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 12 sequential requests, want 1", n)
	}
}

// TestH1RetriesIdleClosedConnection: the upstream closes a keep-alive
// connection while it is idle; the next body-less request goes through on a
// new connection instead of failing.
func TestH1RetriesIdleClosedConnection(t *testing.T) {
	s, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	tr := newH1(t)
	h1Get(t, tr, "GET", s.URL, nil)
	s.CloseClientConnections() // the upstream drops the idle connection
	time.Sleep(20 * time.Millisecond)
	if _, got := h1Get(t, tr, "GET", s.URL, nil); got != "ok" {
		t.Fatalf("got %q", got)
	}
	// Idle for longer than staleCheckAfter: the dead connection is found
	// before use, so even a request with a body goes through.
	h1Get(t, tr, "GET", s.URL, nil)
	s.CloseClientConnections()
	for _, list := range tr.idle {
		for _, pc := range list {
			pc.idleAt = pc.idleAt.Add(-2 * staleCheckAfter)
		}
	}
	if _, got := h1Get(t, tr, "POST", s.URL, strings.NewReader("body")); got != "ok" {
		t.Fatalf("got %q", got)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

func TestH1EarlyCloseDoesNotReadTheRest(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<30))
		io.CopyN(w, &pattern{}, 1<<30)
	}))
	defer s.Close()
	tr := newH1(t)
	req, _ := http.NewRequest("GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, resp.Body, 1<<20)
	start := time.Now()
	resp.Body.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closing a 1 GiB body after 1 MiB took %s: it read the rest", d)
	}
	if len(tr.idle) != 0 {
		t.Error("a connection with unread body went back to the pool")
	}
}

func TestH1SkipsInterimResponses(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}()
	resp, got := h1Get(t, newH1(t), "GET", "http://"+ln.Addr().String(), nil)
	if resp.StatusCode != 200 || got != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, got)
	}
}

func TestH1Cancellation(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer s.Close()
	tr := newH1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %s, want the context's deadline", err, time.Since(start))
	}
}

func TestH1DialErrorIsConnectError(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://"+testkit.UnusedAddr(t), nil)
	_, err := newH1(t).RoundTrip(req)
	if !isConnectError(err) {
		t.Fatalf("err = %v, want a dial error", err)
	}
}

func TestH1ConnectionCloseIsNotPooled(t *testing.T) {
	s, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	tr := newH1(t)
	h1Get(t, tr, "GET", s.URL, nil)
	h1Get(t, tr, "GET", s.URL, nil)
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (Connection: close)", n)
	}
}

// TestH1IdleTimesFromCaller: put and takeIdle take the caller's reading of
// the clock for a pooled connection's idle time, so that a connection
// idle past idleTimeout by that reading is closed and not reused, and one
// within it is reused.
func TestH1IdleTimesFromCaller(t *testing.T) {
	tr := &h1Transport{maxIdle: 2, idleTimeout: time.Minute}
	const addr = "10.0.0.1:80"
	pooled := func() (*h1Conn, net.Conn) {
		c, peer := net.Pipe()
		t.Cleanup(func() { c.Close(); peer.Close() })
		return &h1Conn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c), addr: addr}, peer
	}
	t0 := time.Now()
	old, peer := pooled()
	tr.put(old, t0)
	if old.idleAt != t0 {
		t.Fatalf("idle since %v, want the reading passed (%v)", old.idleAt, t0)
	}
	if pc := tr.takeIdle(addr, t0.Add(2*time.Minute)); pc != nil {
		t.Fatal("a connection idle for twice idleTimeout by the reading passed was reused")
	}
	peer.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the expired connection was not closed: %v", err)
	}
	young, _ := pooled()
	tr.put(young, t0)
	if pc := tr.takeIdle(addr, t0.Add(staleCheckAfter/2)); pc != young {
		t.Fatal("a connection idle within idleTimeout by the reading passed was not reused")
	}
}
