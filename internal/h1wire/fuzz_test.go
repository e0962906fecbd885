package h1wire

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// parsed is what both parsers must agree on when both accept a message.
type parsed struct {
	method, target, host string
	header               map[string][]string
	bodyLen              int64
	close                bool
}

// parseOurs frames data with ParseHead and, for a body, ChunkedReader or
// Content-Length; a head or body that is not all there is refused.
func parseOurs(data []byte) (*parsed, error) {
	var r Request
	n, err := ParseHead(data, &r, Limits{})
	if err != nil {
		return nil, err
	}
	p := &parsed{method: string(r.Method), target: string(r.Target), host: string(r.Host),
		header: map[string][]string{}, close: r.Close}
	for _, f := range r.Fields {
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		if k == "Content-Length" && p.header[k] != nil {
			continue // identical, as ParseHead checked; net/http keeps one
		}
		p.header[k] = append(p.header[k], string(f.Value))
	}
	body := data[n:]
	switch r.Body {
	case BodyLength:
		if int64(len(body)) < r.ContentLength {
			return nil, io.ErrUnexpectedEOF
		}
		p.bodyLen = r.ContentLength
	case BodyChunked:
		var c ChunkedReader
		c.Reset(bufio.NewReader(bytes.NewReader(body)), Limits{})
		if p.bodyLen, err = io.Copy(io.Discard, &c); err != nil {
			return nil, err
		}
		// net/http takes these out of the header of a chunked request.
		delete(p.header, "Transfer-Encoding")
		delete(p.header, "Trailer")
	}
	return p, nil
}

// parseNetHTTP frames data with net/http's http.ReadRequest and reads the
// body to its end.
func parseNetHTTP(data []byte) (*parsed, error) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(io.Discard, req.Body)
	if err != nil {
		return nil, err
	}
	return &parsed{method: req.Method, target: req.RequestURI, host: req.Host,
		header: req.Header, bodyLen: n, close: req.Close}, nil
}

// FuzzAgainstNetHTTP feeds the same bytes to ParseHead (with the body's
// decoding) and to net/http's http.ReadRequest. It fails if ours accepts a
// message that net/http refuses, or if both accept it and disagree on
// method, target, Host, header fields (as net/http keeps them), body length
// or whether the connection closes.
func FuzzAgainstNetHTTP(f *testing.F) {
	for _, s := range []string{
		browserGET,
		req("POST /api HTTP/1.1", "Host: a", "Content-Length: 5") + "hello",
		req("POST /api HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\nX: y\r\n\r\n",
		req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Transfer-Encoding: chunked") + "0\r\n\r\n",
		req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Trailer: X") + "3;a=\"b\"\r\nabc\r\n0\r\n\r\n",
		req("GET http://a:81/x?y HTTP/1.1", "Host: a:81"),
		req("CONNECT a:443 HTTP/1.1", "Host: a:443"),
		req("OPTIONS * HTTP/1.0", "Connection: keep-alive", "Pragma: no-cache"),
		req("GET / HTTP/1.1", "Host: [::1]:80", "Content-Length: 0", "Content-Length: 0"),
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		req("GET /a%zz HTTP/1.1", "Host: a"),
		req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "5 \r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(compareWithNetHTTP)
}

// FuzzPartsAgainstNetHTTP makes the same comparison on requests built from
// fuzzed parts (a request line, two field lines, a framing field and a
// body) joined by CRLF, so that the fuzzer spends its time on messages that
// get past the first line.
func FuzzPartsAgainstNetHTTP(f *testing.F) {
	f.Add("GET /a?b HTTP/1.1", "Host: a", "X-Y: z", "Content-Length: 5", "hello")
	f.Add("POST http://a/ HTTP/1.1", "Host: A", "Trailer: X", "Transfer-Encoding: chunked", "5;x=1\r\nhello\r\n0\r\nX: 1\r\n\r\n")
	f.Add("CONNECT [::1]:443 HTTP/1.0", "Connection: keep-alive", "Pragma: no-cache", "Content-Length: 0", "")
	f.Fuzz(func(t *testing.T, line, field1, field2, framing, body string) {
		msg := line + "\r\n" + field1 + "\r\n" + field2 + "\r\n" + framing + "\r\n\r\n" + body
		compareWithNetHTTP(t, []byte(msg))
	})
}

// compareWithNetHTTP is the check of both fuzz targets.
func compareWithNetHTTP(t *testing.T, data []byte) {
	ours, oursErr := parseOurs(data)
	theirs, theirsErr := parseNetHTTP(data)
	if oursErr != nil {
		return
	}
	if theirsErr != nil {
		t.Fatalf("accepted %q, which net/http refuses: %v", data, theirsErr)
	}
	// net/http adds Cache-Control for "Pragma: no-cache", keeps Host
	// out of its header, and may drop a "close" Connection field.
	if p := theirs.header["Pragma"]; len(p) > 0 && p[0] == "no-cache" && ours.header["Cache-Control"] == nil {
		delete(theirs.header, "Cache-Control")
	}
	for _, k := range []string{"Host", "Connection"} {
		delete(ours.header, k)
		delete(theirs.header, k)
	}
	switch {
	case ours.method != theirs.method, ours.target != theirs.target:
		t.Fatalf("%q: request line %s %s, net/http %s %s", data, ours.method, ours.target, theirs.method, theirs.target)
	case !strings.EqualFold(ours.host, theirs.host):
		t.Fatalf("%q: host %q, net/http %q", data, ours.host, theirs.host)
	case ours.bodyLen != theirs.bodyLen:
		t.Fatalf("%q: body of %d bytes, net/http %d", data, ours.bodyLen, theirs.bodyLen)
	case ours.close != theirs.close:
		t.Fatalf("%q: close %v, net/http %v", data, ours.close, theirs.close)
	case len(ours.header) != len(theirs.header):
		t.Fatalf("%q: header %v, net/http %v", data, ours.header, theirs.header)
	}
	for k, v := range ours.header {
		if !slices.Equal(v, theirs.header[k]) {
			t.Fatalf("%q: field %s = %q, net/http %q", data, k, v, theirs.header[k])
		}
	}
}

// TestAgreesWithNetHTTP: messages both parsers accept, so that the fuzz
// comparison is not vacuous, and messages that net/http accepts and
// ParseHead refuses, each a way for two parsers to frame one message
// differently.
func TestAgreesWithNetHTTP(t *testing.T) {
	for _, s := range []string{
		browserGET,
		req("POST /api HTTP/1.1", "Host: a", "Content-Length: 5") + "hello",
		req("POST /api HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Trailer: X") + "5;e=1\r\nhello\r\n0\r\nX: y\r\n\r\n",
		req("GET http://a:81/x?y HTTP/1.1", "Host: a:81", "Connection: close"),
		req("CONNECT a:443 HTTP/1.1", "Host: a:443"),
		req("OPTIONS * HTTP/1.0", "Connection: keep-alive", "Pragma: no-cache"),
		req("GET / HTTP/1.1", "Host: [::1]:80", "Content-Length: 0", "Content-Length: 0"),
	} {
		if _, err := parseOurs([]byte(s)); err != nil {
			t.Errorf("refused %q: %v", s, err)
		}
		compareWithNetHTTP(t, []byte(s))
	}
	for _, s := range []string{
		req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Transfer-Encoding: chunked") + "0\r\n\r\n",
		req("POST / HTTP/1.0", "Content-Length: 3", "Transfer-Encoding: chunked") + "abc",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		req("GET http://b/ HTTP/1.1", "Host: a"),
		req("GET / HTTP/1.1"),
		req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "5 \r\nhello\r\n0\r\n\r\n",
		req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "5; a\r\nhello\r\n0\r\n\r\n",
		req("GET * HTTP/1.1", "Host: a"),
	} {
		if _, err := parseNetHTTP([]byte(s)); err != nil {
			t.Errorf("net/http refuses %q too (%v): pick another example", s, err)
		}
		if _, err := parseOurs([]byte(s)); err == nil {
			t.Errorf("accepted %q", s)
		}
	}
}
