package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// opaqueBody is a body net/http cannot see into (as the proxy's replayGuard):
// Request.Write then makes the same choices for it as for a client's body.
type opaqueBody struct{ r io.Reader }

func (b *opaqueBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *opaqueBody) Close() error               { return nil }

func body(s string) io.ReadCloser { return &opaqueBody{strings.NewReader(s)} }

// writeBoth writes the request that mk builds with writeRequest and with
// net/http's Request.Write, and returns both outputs and errors.
func writeBoth(mk func() *http.Request) (ours, theirs string, oursErr, theirsErr error) {
	var a, b bytes.Buffer
	bw := bufio.NewWriter(&a)
	oursErr = writeRequest(bw, mk())
	bw.Flush()
	bw = bufio.NewWriter(&b)
	theirsErr = mk().Write(bw)
	bw.Flush()
	return a.String(), b.String(), oursErr, theirsErr
}

// TestWriteRequestAsNetHTTP: the upstream request head and body are the
// bytes net/http's Request.Write sends for the same request, field order
// included, for every framing the proxy forwards: no body, a body of known
// length, of unknown length (chunked), with trailers, HTTP/1.0 clients,
// Expect: 100-continue, Connection: close, hosts that need cleaning, and
// values with CR or LF.
func TestWriteRequestAsNetHTTP(t *testing.T) {
	base := func(method, target string, b io.ReadCloser, n int64) *http.Request {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}, Body: b, ContentLength: n,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		r.Header["X-Forwarded-For"] = []string{"10.0.0.1"}
		r.Header["Accept"] = []string{"*/*"}
		r.Header["Zz-Last"] = []string{"z"}
		r.Header["A-First"] = []string{"a", "b"}
		return r
	}
	for _, tt := range []struct {
		name string
		mk   func() *http.Request
	}{
		{"GET no body", func() *http.Request { return base("GET", "http://app.example.org/a/b?x=1&y=2", nil, 0) }},
		{"GET absent User-Agent kept absent", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Header["User-Agent"] = nil
			return r
		}},
		{"GET default User-Agent", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			delete(r.Header, "X-Forwarded-For")
			return r
		}},
		{"User-Agent cleaned", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Header["User-Agent"] = []string{"  curl\r\n/8 \t", "second"}
			return r
		}},
		{"empty method and path", func() *http.Request {
			r := base("", "http://app.example.org", nil, 0)
			return r
		}},
		{"escaped path", func() *http.Request {
			r := base("GET", "http://app.example.org/a%2Fb/c d", nil, 0)
			r.URL.RawPath = "/a%2Fb/c%20d"
			return r
		}},
		{"force query", func() *http.Request { return base("GET", "http://app.example.org/p?", nil, 0) }},
		{"POST known length", func() *http.Request { return base("POST", "http://app.example.org/up", body("hello"), 5) }},
		{"POST no body", func() *http.Request { return base("POST", "http://app.example.org/up", nil, 0) }},
		{"PUT NoBody", func() *http.Request { return base("PUT", "http://app.example.org/up", http.NoBody, 0) }},
		{"PATCH no body", func() *http.Request { return base("PATCH", "http://app.example.org/up", nil, 0) }},
		{"DELETE no body", func() *http.Request { return base("DELETE", "http://app.example.org/x", nil, 0) }},
		{"DELETE known length", func() *http.Request { return base("DELETE", "http://app.example.org/x", body("abc"), 3) }},
		{"POST unknown length", func() *http.Request { return base("POST", "http://app.example.org/up", body("hello world"), -1) }},
		{"POST chunked client", func() *http.Request {
			r := base("POST", "http://app.example.org/up", body(strings.Repeat("x", 70000)), -1)
			r.TransferEncoding = []string{"chunked"}
			return r
		}},
		{"POST chunked empty", func() *http.Request {
			r := base("POST", "http://app.example.org/up", body(""), -1)
			r.TransferEncoding = []string{"chunked"}
			return r
		}},
		{"chunked with trailers", func() *http.Request {
			r := base("POST", "http://app.example.org/up", body("data"), -1)
			r.TransferEncoding = []string{"chunked"}
			r.Trailer = http.Header{"X-Sum": {"1"}, "grpc-status": {"0"}, "A-Trailer": {"x\ny"}}
			return r
		}},
		{"trailer on a body of known length is dropped", func() *http.Request {
			r := base("POST", "http://app.example.org/up", body("data"), 4)
			r.Trailer = http.Header{"X-Sum": {"1"}}
			return r
		}},
		{"forbidden trailer", func() *http.Request {
			r := base("POST", "http://app.example.org/up", body("data"), -1)
			r.Trailer = http.Header{"content-length": {"1"}}
			return r
		}},
		{"Expect 100-continue", func() *http.Request {
			r := base("PUT", "http://app.example.org/up", body("payload"), 7)
			r.Header["Expect"] = []string{"100-continue"}
			return r
		}},
		{"HTTP/1.0 client", func() *http.Request {
			r := base("POST", "http://app.example.org/old", body("ten bytes!"), 10)
			r.Proto, r.ProtoMinor = "HTTP/1.0", 0
			return r
		}},
		{"Close", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Close = true
			return r
		}},
		{"Close with Connection close", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Close = true
			r.Header["Connection"] = []string{"keep-alive, Close"}
			return r
		}},
		{"framing fields in Header are not written", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Header["Content-Length"] = []string{"99"}
			r.Header["Transfer-Encoding"] = []string{"chunked"}
			r.Header["Trailer"] = []string{"X"}
			r.Header["Host"] = []string{"other"}
			return r
		}},
		{"invalid names and values", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Header["Bad Name"] = []string{"x"}
			r.Header[""] = []string{"x"}
			r.Header["X-Crlf"] = []string{"a\r\nInjected: 1", " padded\t"}
			return r
		}},
		{"Host with zone", func() *http.Request {
			r := base("GET", "http://[fe80::1%25eth0]:8080/", nil, 0)
			return r
		}},
		{"unicode Host", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Host = "bücher.example:80"
			return r
		}},
		{"invalid Host", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.Host = "a b\r\n"
			return r
		}},
		{"Host from URL", func() *http.Request {
			r := base("GET", "http://10.0.0.9:80/", nil, 0)
			r.Host = ""
			return r
		}},
		{"control byte in query", func() *http.Request {
			r := base("GET", "http://app.example.org/", nil, 0)
			r.URL.RawQuery = "a=\x01"
			return r
		}},
		{"body shorter than length", func() *http.Request { return base("POST", "http://app.example.org/", body("abc"), 5) }},
		{"body longer than length", func() *http.Request { return base("POST", "http://app.example.org/", body("abcdef"), 5) }},
		{"length without body", func() *http.Request { return base("POST", "http://app.example.org/", nil, 5) }},
		{"GET body of unknown length (probed)", func() *http.Request { return base("GET", "http://app.example.org/", body("x"), -1) }},
		{"non-nil empty body (probed)", func() *http.Request { return base("OPTIONS", "http://app.example.org/", body(""), 0) }},
		{"identity Transfer-Encoding", func() *http.Request {
			r := base("POST", "http://app.example.org/", body("abc"), -1)
			r.TransferEncoding = []string{"identity"}
			return r
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ours, theirs, oe, te := writeBoth(tt.mk)
			if (oe == nil) != (te == nil) {
				t.Fatalf("error %v; net/http's %v", oe, te)
			}
			if oe == nil && ours != theirs {
				t.Fatalf("wrote\n%q\nnet/http wrote\n%q", ours, theirs)
			}
		})
	}
}

// FuzzWriteRequest: for requests built from fuzzed parts, writeRequest and
// Request.Write write the same bytes, or both fail.
func FuzzWriteRequest(f *testing.F) {
	f.Add("GET", "/a?b=c", "app.example.org", "X-A", "1", "Accept", "*/*", "", -2, false, false)
	f.Add("POST", "/up", "h:8080", "Content-Type", "text/plain", "X-B", "a\nb", "hello", 5, false, false)
	f.Add("PUT", "/up", "h", "Expect", "100-continue", "User-Agent", "u", "data", -1, true, true)
	f.Add("PATCH", "/", "[::1%25x]:80", "bad name", "v", "Te", "trailers", "", 0, false, true)
	f.Fuzz(func(t *testing.T, method, target, host, k1, v1, k2, v2, payload string, length int, chunked, closeConn bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		mk := func() *http.Request {
			r := &http.Request{Method: method, URL: u, Host: host, Header: http.Header{k1: {v1}}, Close: closeConn}
			r.Header.Add(k2, v2)
			switch {
			case length == -2:
			case length == -1:
				r.Body, r.ContentLength = body(payload), -1
			default:
				r.Body, r.ContentLength = body(payload), int64(length)
			}
			if chunked && r.Body != nil {
				r.TransferEncoding = []string{"chunked"}
				r.Trailer = http.Header{k2: {v1}}
			}
			return r
		}
		ours, theirs, oe, te := writeBoth(mk)
		if (oe == nil) != (te == nil) {
			t.Fatalf("error %v; net/http's %v", oe, te)
		}
		if oe == nil && ours != theirs {
			t.Fatalf("wrote\n%q\nnet/http wrote\n%q", ours, theirs)
		}
	})
}
