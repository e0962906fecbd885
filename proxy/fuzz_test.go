package proxy

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// FuzzRequest sends arbitrary bytes to a real edge listener as a client's
// request. Whatever arrives, the edge answers with a well-formed HTTP/1.1
// response or closes the connection, never crashes, and keeps serving the
// next client; a request the backend sees has a Host the route names.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: app.example.org\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: app.example.org\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.example.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET /../../etc/passwd HTTP/1.1\r\nHost: app.example.org\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET http://evil.example/ HTTP/1.1\r\nHost: app.example.org\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	wrongHost := make(chan string, 1) // a Host no route names reached the backend
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			h = r.Host
		}
		if !strings.EqualFold(strings.TrimSuffix(h, "."), "app.example.org") {
			select {
			case wrongHost <- r.Host:
			default:
			}
		}
		w.Write([]byte("ok"))
	}))
	defer b.Close()
	e := startEdge(f, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}})
	f.Fuzz(func(t *testing.T, req []byte) {
		c, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(req)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		r := bufio.NewReader(c)
		if line, err := r.ReadString('\n'); err == nil && !strings.HasPrefix(line, "HTTP/1.") {
			t.Fatalf("not an HTTP/1.x status line: %q", line)
		}
		// The edge still serves.
		if status := rawExchange(t, e.addr, "GET / HTTP/1.1\r\nHost: app.example.org\r\nConnection: close\r\n\r\n"); status != "HTTP/1.1 200 OK" {
			t.Fatalf("after %q the edge answers %q", bytes.TrimSpace(req), status)
		}
		select {
		case h := <-wrongHost:
			t.Fatalf("after %q the backend saw Host %q", bytes.TrimSpace(req), h)
		default:
		}
	})
}
