package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestTransferEncodingClosesTheConnection: RFC 9112 section 6.1. A request
// with Transfer-Encoding (with or without a Content-Length beside it) is
// answered and its connection closed, so no byte after it can be read as
// another request; so is an HTTP/1.0 request with a body, keep-alive or not.
// The edge's own HTTP/1 loop refuses the requests that a second parser could
// frame differently (Content-Length beside Transfer-Encoding, Transfer-Encoding
// in HTTP/1.0: internal/h1wire) with 400, where net/http's server answered
// them 200: either way nothing after them is read.
func TestTransferEncodingClosesTheConnection(t *testing.T) {
	b := testkit.Backend(t, "b")
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}})
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: app.example.org\r\n\r\n"
	for _, tt := range []struct {
		name, req string
		want      int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: app.example.org\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n", 400},
		{"TE alone", "POST / HTTP/1.1\r\nHost: app.example.org\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200},
		{"HTTP/1.0 with TE", "POST / HTTP/1.0\r\nHost: app.example.org\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", e.addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tt.req+smuggled); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !resp.Close {
				t.Fatalf("status %d, Connection: close %v; want %d and close", resp.StatusCode, resp.Close, tt.want)
			}
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("after the answer the connection carried %q", strings.SplitN(string(rest), "\r\n", 2)[0])
			}
		})
	}
}
