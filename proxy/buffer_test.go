package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// bodyBackend answers with what it received: the body's length as the
// backend read it, and how it was framed.
func bodyBackend(t *testing.T, conns *atomic.Int64) *httptest.Server {
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("X-Chunked", strconv.FormatInt(int64(len(r.TransferEncoding)), 10))
		w.Write([]byte(strconv.FormatInt(n, 10)))
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// TestSlowBodyHoldsNoUpstream: while a client trickles a body that fits the
// request buffer, no connection to the task is open; the body then arrives
// whole, with its length (a chunked one included). A body larger than the
// buffer streams.
func TestSlowBodyHoldsNoUpstream(t *testing.T) {
	var conns atomic.Int64
	b := bodyBackend(t, &conns)
	e := startEdgeWith(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}},
		Options{DialTimeout: time.Second, RequestBuffer: 1 << 10})
	for _, tt := range []struct {
		name, head, first, rest string
		wantLen, wantCL, wantTE string
	}{
		{"declared length", "Content-Length: 10\r\n", "hello", "world", "10", "10", "0"},
		{"chunked", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n", "5\r\nworld\r\n0\r\n\r\n", "10", "10", "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := conns.Load()
			c, err := net.DialTimeout("tcp", e.addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: app.example.org\r\n"+tt.head+"\r\n"+tt.first)
			time.Sleep(300 * time.Millisecond) // a slow client
			if n := conns.Load() - before; n != 0 {
				t.Fatalf("%d upstream connections opened while the body was incomplete", n)
			}
			io.WriteString(c, tt.rest)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != tt.wantLen || resp.Header.Get("X-Content-Length") != tt.wantCL || resp.Header.Get("X-Chunked") != tt.wantTE {
				t.Fatalf("%d %q CL %s chunked %s; want 200 %q CL %s chunked %s", resp.StatusCode, body,
					resp.Header.Get("X-Content-Length"), resp.Header.Get("X-Chunked"), tt.wantLen, tt.wantCL, tt.wantTE)
			}
		})
	}
	t.Run("larger than the buffer streams", func(t *testing.T) {
		big := strings.Repeat("x", 10<<10)
		resp := testkit.Request(t, e.client, "POST", e.url+"/", "app.example.org", strings.NewReader(big))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "10240" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}

// TestStreamingRouteDoesNotBuffer: a route with swarmgate.request.buffering
// =false sends the body on as it comes: the task sees the request before the
// body is complete.
func TestStreamingRouteDoesNotBuffer(t *testing.T) {
	var conns atomic.Int64
	b := bodyBackend(t, &conns)
	r := testkit.Route("upload", []string{"app.example.org"}, "/", testkit.Addr(b))
	r.StreamBody = true
	e := startEdgeWith(t, route.Config{Routes: []route.Route{r}}, Options{DialTimeout: time.Second, RequestBuffer: 1 << 10})
	c, err := net.DialTimeout("tcp", e.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 10\r\n\r\nhello")
	testkit.Eventually(t, 3*time.Second, 10*time.Millisecond, func() error {
		if conns.Load() == 0 {
			return errors.New("no upstream connection while the body streams")
		}
		return nil
	})
	io.WriteString(c, "world")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "10" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}
