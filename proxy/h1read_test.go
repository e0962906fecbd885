package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/h1wire"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// readOurs reads a response from data as exchange does: the head with
// h1wire, the *http.Response from newResponse, the body with h1Body.
func readOurs(data []byte, method string) (*http.Response, string, error) {
	pc := &h1Conn{br: bufio.NewReaderSize(bytes.NewReader(data), 4096)}
	req := &http.Request{Method: method}
	for {
		err := readHead(pc, req)
		if err != nil {
			return nil, "", err
		}
		if code := pc.head.Status; code >= 200 || code == 101 {
			break
		}
	}
	resp, b := newResponse(&pc.head, req, new(h1Response), nil), &h1Body{pc: pc}
	b.trailer = &resp.Trailer
	b.frame()
	body, err := io.ReadAll(b)
	return resp, string(body), err
}

func readHead(pc *h1Conn, req *http.Request) error {
	return h1wire.ReadResponseHead(pc.br, &pc.head, req.Method == http.MethodHead, responseLimits, &pc.spill)
}

func readTheirs(data []byte, method string) (*http.Response, string, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	req := &http.Request{Method: method}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, "", err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == 101 {
			body, err := io.ReadAll(resp.Body)
			return resp, string(body), err
		}
	}
}

// sameResponse compares what the proxy uses of a response.
func sameResponse(a, b *http.Response) error {
	switch {
	case a.Status != b.Status, a.StatusCode != b.StatusCode, a.Proto != b.Proto, a.ProtoMinor != b.ProtoMinor:
		return fmt.Errorf("status %q %d %s, net/http %q %d %s", a.Status, a.StatusCode, a.Proto, b.Status, b.StatusCode, b.Proto)
	case !reflect.DeepEqual(a.Header, b.Header):
		return fmt.Errorf("header %v, net/http %v", a.Header, b.Header)
	case a.ContentLength != b.ContentLength:
		return fmt.Errorf("ContentLength %d, net/http %d", a.ContentLength, b.ContentLength)
	case !reflect.DeepEqual(a.TransferEncoding, b.TransferEncoding):
		return fmt.Errorf("TransferEncoding %q, net/http %q", a.TransferEncoding, b.TransferEncoding)
	case a.Close != b.Close:
		return fmt.Errorf("Close %v, net/http %v", a.Close, b.Close)
	case len(a.Trailer) != len(b.Trailer) || len(a.Trailer) > 0 && !reflect.DeepEqual(a.Trailer, b.Trailer):
		return fmt.Errorf("Trailer %v, net/http %v", a.Trailer, b.Trailer)
	}
	return nil
}

func compareResponse(t *testing.T, data []byte, method string) {
	t.Helper()
	ours, ob, oerr := readOurs(data, method)
	if oerr != nil {
		return // refused: stricter than net/http is allowed
	}
	theirs, tb, terr := readTheirs(data, method)
	if terr != nil {
		t.Fatalf("accepted what net/http refuses (%v): %q", terr, data)
	}
	if err := sameResponse(ours, theirs); err != nil {
		t.Fatalf("%v\nfor %q", err, data)
	}
	if ob != tb {
		t.Fatalf("body %q, net/http %q, for %q", ob, tb, data)
	}
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\nx-lower-case: a\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, grpc-status\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nGrpc-Status: 0\r\nX-Undeclared: u\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n\r\nuntil the end",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 500 Internal  Error \r\nX-Empty:\r\nX-Pad: \t v \t\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 6000) + "\r\nContent-Length: 1\r\n\r\nx",
	// As many fields as h1Response holds values for, and more.
	"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nA: 9\r\nI: 10\r\nContent-Length: 1\r\n\r\nx",
}

// TestResponseAsNetHTTP: the response the proxy builds from an upstream's
// head is the one http.ReadResponse built (header, status, framing,
// trailers, body), for every framing an upstream uses, a head larger than
// the connection's buffer included.
func TestResponseAsNetHTTP(t *testing.T) {
	for _, s := range responseSeeds {
		for _, method := range []string{"GET", "HEAD"} {
			ours, _, err := readOurs([]byte(s), method)
			if err != nil && !strings.Contains(s, "short") {
				t.Errorf("%s %q: %v", method, s, err)
				continue
			}
			if ours == nil {
				continue
			}
			compareResponse(t, []byte(s), method)
		}
	}
}

func FuzzResponseAsNetHTTP(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		compareResponse(t, data, method)
	})
}

// rawBackend answers every request on every connection with resp, and
// closes the connection after it when closes is set.
func rawBackend(t *testing.T, resp string, closes bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
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
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, resp); err != nil || closes {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestUpstreamResponseFraming: through the edge, an upstream response that
// a client could frame otherwise than the edge (response splitting) is not
// passed on: the client gets 502 and none of its bytes. Interim responses
// are dropped, and the framings an upstream may use arrive intact.
func TestUpstreamResponseFraming(t *testing.T) {
	big := strings.Repeat("v", 20000)
	for _, tt := range []struct {
		name, resp string
		method     string
		want       int
		body       string
	}{
		{"CL with TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", 502, ""},
		{"differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "GET", 502, ""},
		{"bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\nabc", "GET", 502, ""},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", "GET", 502, ""},
		{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", 502, ""},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", "GET", 502, ""},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", 502, ""},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "GET", 502, ""},
		{"bad status line", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "GET", 502, ""},
		{"CTL in value", "HTTP/1.1 200 OK\r\nX-A: a\x01\r\nContent-Length: 0\r\n\r\n", "GET", 502, ""},
		{"interim responses", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "GET", 200, "ok"},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nto the end", "GET", 200, "to the end"},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "HEAD", 200, ""},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, ""},
		{"large head", "HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawBackend(t, tt.resp, tt.name == "until close")
			e := startEngine(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", addr)}}, false)
			c, err := net.DialTimeout("tcp", e.plainAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "%s / HTTP/1.1\r\nHost: app.example.org\r\n\r\n", tt.method)
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: tt.method})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.want, b)
			}
			if tt.want == 502 {
				if resp.Header.Get("X-A") != "" || strings.Contains(string(b), "abc") {
					t.Fatalf("the refused response reached the client: %v %q", resp.Header, b)
				}
				return
			}
			if string(b) != tt.body {
				t.Fatalf("body %q, want %q", b, tt.body)
			}
			if tt.name == "large head" && resp.Header.Get("X-Big") != big {
				t.Fatalf("X-Big of %d bytes, want %d", len(resp.Header.Get("X-Big")), len(big))
			}
		})
	}
}
