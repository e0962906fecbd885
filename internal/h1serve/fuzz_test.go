package h1serve

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// memConn is a connection that reads in and records what is written.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)         { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)        { return c.out.Write(p) }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzServeConn feeds raw bytes to a connection served by the loop: it
// must not panic, and what it writes must be a sequence of well-formed
// responses, one per request the handler saw (and at most one refusal
// after them), nothing after a response that closes the connection.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.0\r\n\r\n",
		"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n",
		"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
		"GET /204 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var methods []string
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			methods = append(methods, r.Method)
			b, _ := io.ReadAll(r.Body)
			switch r.URL.Path {
			case "/204":
				w.WriteHeader(http.StatusNoContent)
			case "/chunked":
				w.Header().Set("Trailer", "X-T")
				w.Write(b)
				w.(http.Flusher).Flush()
				w.Header().Set("X-T", "t")
			case "/103":
				w.WriteHeader(http.StatusEarlyHints)
			}
			w.Write(b)
		})}
		c := &memConn{in: bytes.NewReader(in)}
		s.ServeConn(c)
		br := bufio.NewReader(&c.out)
		for i := 0; ; i++ {
			if _, err := br.Peek(1); err == io.EOF {
				if i < len(methods) {
					t.Fatalf("%d responses to %d requests", i, len(methods))
				}
				return
			}
			m := http.MethodGet
			if i < len(methods) {
				m = methods[i]
			} else if i > len(methods) {
				t.Fatalf("more responses than requests: %q", c.out.String())
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: m})
			if err != nil {
				t.Fatalf("response %d: %v in %q", i, err, c.out.String())
			}
			if resp.StatusCode < 200 {
				i-- // an informational response before the final one
				continue
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil && !resp.Close {
				t.Fatalf("response %d body: %v", i, err)
			}
			if i == len(methods) && (!resp.Close || resp.StatusCode < 400) {
				t.Fatalf("refusal %d without close: %q", resp.StatusCode, c.out.String())
			}
			if resp.Close && br.Buffered() > 0 {
				t.Fatalf("bytes after a response that closes: %q", c.out.String())
			}
		}
	})
}
