package testkit

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gorilla/websocket"
)

// Backend is an HTTP server that names itself in every answer: it reads the
// request body and writes "NAME METHOD REQUEST-URI", so the body tells a
// test which backend answered and what it was asked. It closes when the
// test ends.
func Backend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %s", name, r.Method, r.URL.RequestURI())
	}))
}

// WebSocketEcho is a WebSocket server that answers every message with
// prefix and the message, in a message of the same type, until the client
// goes away. It closes when the test ends.
func WebSocketEcho(t testing.TB, prefix string) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte(prefix), msg...)); err != nil {
				return
			}
		}
	}))
}

// EventStream is a server of server-sent events: it sends "data: event I"
// for I = 0, 1, ..., flushing each, and after each one waits until next
// delivers (a channel the test sends on, or a ticker's) or the client goes
// away. It ends the response after n events; if n is zero, only when the
// client goes away. It closes when the test ends.
func EventStream[T any](t testing.TB, n int, next <-chan T) *httptest.Server {
	t.Helper()
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; n == 0 || i < n; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
}

// Request sends method url through client with the Host header host and
// body (nil for none), and fails t if no response comes. The caller closes
// the response's body.
func Request(t testing.TB, client *http.Client, method, url, host string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, url, host, err)
	}
	return resp
}

// Addr is the host:port a test server listens on: what a route lists as
// an endpoint.
func Addr(s *httptest.Server) string { return s.Listener.Addr().String() }

// UnusedAddr returns a loopback host:port that nothing listens on: a test
// dials it to be refused, or gives it to a server to listen on.
//
// The port is below the kernel's ephemeral range (32768 and up on Linux): a
// port handed out there and closed again can be taken by any outgoing
// connection of a test package running in parallel before the test listens
// on it. Ports here are taken only by listeners; it is free for TCP and UDP
// (an HTTPS port is also HTTP/3's) when returned.
func UnusedAddr(t testing.TB) string {
	t.Helper()
	for range 1000 {
		port := unusedLow + rand.IntN(unusedHigh-unusedLow)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr
	}
	t.Fatalf("no free port from %d to %d", unusedLow, unusedHigh)
	return ""
}

// The ports UnusedAddr chooses from: below the ephemeral range and below the
// ones the e2e suite publishes (18000 and up) and bench/scale (21000-32000) use.
const (
	unusedLow  = 10000
	unusedHigh = 18000
)

func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
