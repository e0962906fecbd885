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

// rawSeen is what a raw upstream read of one request: its head as sent and
// its body as net/http's server decodes it.
type rawSeen struct {
	head   string
	req    *http.Request
	body   string
	bodyOK bool
}

// rawUpstream accepts connections and, for each request, reports its head
// bytes and decoded body on the channel, then answers 200 "ok".
func rawUpstream(t *testing.T) (string, <-chan rawSeen) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan rawSeen, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head.String()), br)))
					if err != nil {
						return
					}
					b, err := io.ReadAll(req.Body)
					ch <- rawSeen{head: head.String(), req: req, body: string(b), bodyOK: err == nil}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// TestUpstreamRequestFraming: through the own HTTP/1 loop and the own
// upstream client, a request reaches the upstream as HTTP/1.1 with the
// framing net/http's client would give it: an HTTP/1.0 client's body with
// its Content-Length, a chunked body of a streaming route chunked (and a
// buffered one with its length), a GET without Content-Length. Expect:
// 100-continue is answered by the edge (its 100 Continue when the body is
// first read) and not forwarded: the body follows the head at once.
func TestUpstreamRequestFraming(t *testing.T) {
	addr, got := rawUpstream(t)
	buffered := testkit.Route("web", []string{"app.example.org"}, "/", addr)
	streaming := testkit.Route("stream", []string{"stream.example.org"}, "/", addr)
	streaming.StreamBody = true
	e := startEngine(t, route.Config{Routes: []route.Route{buffered, streaming}}, false)
	for _, tt := range []struct {
		name, req  string
		wantInHead []string
		notInHead  []string
		wantBody   string
		interim    bool // the client sees 100 Continue first
	}{
		{name: "GET", req: "GET /g?q=1 HTTP/1.1\r\nHost: app.example.org\r\nUser-Agent: t\r\n\r\n",
			wantInHead: []string{"GET /g?q=1 HTTP/1.1\r\n", "Host: app.example.org\r\n", "User-Agent: t\r\n", "X-Forwarded-For: 127.0.0.1\r\n"},
			notInHead:  []string{"Content-Length", "Transfer-Encoding", "Go-http-client"}},
		{name: "HTTP/1.0 client", req: "POST /old HTTP/1.0\r\nHost: app.example.org\r\nContent-Length: 5\r\n\r\nhello",
			wantInHead: []string{"POST /old HTTP/1.1\r\n", "Content-Length: 5\r\n"}, notInHead: []string{"Transfer-Encoding"}, wantBody: "hello"},
		{name: "chunked, buffered", req: "POST /c HTTP/1.1\r\nHost: app.example.org\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			wantInHead: []string{"Content-Length: 11\r\n"}, notInHead: []string{"Transfer-Encoding"}, wantBody: "hello world"},
		{name: "chunked, streamed", req: "POST /c HTTP/1.1\r\nHost: stream.example.org\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			wantInHead: []string{"Transfer-Encoding: chunked\r\n"}, notInHead: []string{"Content-Length"}, wantBody: "hello world"},
		{name: "POST without body", req: "POST /e HTTP/1.1\r\nHost: app.example.org\r\nContent-Length: 0\r\n\r\n",
			wantInHead: []string{"Content-Length: 0\r\n"}},
		{name: "Expect", req: "PUT /x HTTP/1.1\r\nHost: stream.example.org\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
			wantInHead: []string{"Content-Length: 4\r\n"}, notInHead: []string{"Expect"}, wantBody: "data", interim: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", e.plainAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			io.WriteString(c, tt.req)
			if tt.interim {
				line, err := br.ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
					t.Fatalf("first line %q, %v; want 100 Continue", line, err)
				}
				br.ReadString('\n')
				io.WriteString(c, tt.wantBody)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("status %d body %q", resp.StatusCode, b)
			}
			var s rawSeen
			select {
			case s = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("upstream saw no request")
			}
			for _, w := range tt.wantInHead {
				if !strings.Contains(s.head, w) {
					t.Errorf("upstream head lacks %q:\n%s", w, s.head)
				}
			}
			for _, w := range tt.notInHead {
				if strings.Contains(s.head, w) {
					t.Errorf("upstream head has %q:\n%s", w, s.head)
				}
			}
			if !s.bodyOK || s.body != tt.wantBody {
				t.Errorf("upstream body %q (complete %v), want %q", s.body, s.bodyOK, tt.wantBody)
			}
		})
	}
}
