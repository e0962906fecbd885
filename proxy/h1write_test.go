package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
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

// writeMapAndFields writes the upstream request of client request mk()
// both ways the proxy can: its header built as a map (outHeader, then
// setForwarded) with writeRequest, and written from the client's fields
// with upstreamFields.
func writeMapAndFields(mk func() *http.Request, trusted bool, prefix string) (fromMap, fromFields string, mapErr, fieldsErr error) {
	var a, b bytes.Buffer
	r := mk()
	r.Header = outHeader(r.Header, forwardedFields)
	setForwarded(r.Header, mk(), trusted, prefix)
	bw := bufio.NewWriter(&a)
	mapErr = writeRequest(bw, r)
	bw.Flush()
	var f upstreamFields
	r = mk()
	f.set(r, trusted, prefix)
	r.Header = nil
	bw = bufio.NewWriter(&b)
	fieldsErr = writeRequestFields(bw, r, &f)
	bw.Flush()
	return a.String(), b.String(), mapErr, fieldsErr
}

// TestUpstreamFieldsAsMap: upstreamFields writes the bytes the header map
// would, for clients trusted or not, with forwarding fields of their own,
// a prefix, fields Connection names, TE, an absent User-Agent, a request
// that net/http's Request.Write writes, and HTTPS.
func TestUpstreamFieldsAsMap(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 19001}
	for _, h := range []http.Header{
		{},
		{"Accept": {"*/*"}, "User-Agent": {"bench"}},
		{"X-Forwarded-For": {"1.1.1.1", "2.2.2.2"}, "X-Real-Ip": {"1.1.1.1"}, "X-Forwarded-Port": {"8443"},
			"X-Forwarded-Prefix": {"/p"}, "Forwarded": {"for=1.1.1.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil"}},
		{"Connection": {"keep-alive, X-Secret, X-Real-Ip"}, "X-Secret": {"s"}, "Te": {"trailers"}, "Keep-Alive": {"5"}},
		{"Connection": {"te"}, "Te": {"trailers"}, "X_Under": {"u"}, "Http2-Settings": {"x"}, "Zz": {"a\r\nb", " c "}},
		{"User-Agent": nil, "X-Empty": nil, "X-Real-Ip": nil},
	} {
		for _, trusted := range []bool{false, true} {
			for _, prefix := range []string{"", "/api"} {
				for _, variant := range []string{"get", "https", "unknown length", "no local address"} {
					mk := func() *http.Request {
						u, _ := url.Parse("http://10.0.0.7:8080/x?y=1")
						r := &http.Request{Method: "GET", URL: u, Host: "app.example.org", Header: h.Clone(), RemoteAddr: "192.0.2.1:5555"}
						ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, local)
						switch variant {
						case "https":
							r.TLS = &tls.ConnectionState{}
						case "unknown length":
							r.Method, r.Body, r.ContentLength = "DELETE", body("abc"), -1
						case "no local address":
							ctx = context.Background()
						}
						return r.WithContext(ctx)
					}
					fromMap, fromFields, me, fe := writeMapAndFields(mk, trusted, prefix)
					if (me == nil) != (fe == nil) || fromMap != fromFields {
						t.Errorf("%v trusted=%v prefix=%q %s:\nfields wrote %q (%v)\nthe map     %q (%v)",
							h, trusted, prefix, variant, fromFields, fe, fromMap, me)
					}
				}
			}
		}
	}
}

// FuzzUpstreamFields: for client fields built from fuzzed parts, the
// fields written without a map are the map's, byte for byte.
func FuzzUpstreamFields(f *testing.F) {
	f.Add("X-Forwarded-For", "1.1.1.1", "Connection", "x-a", "X-A", "v", "/p", true, false)
	f.Add("X-Real-Ip", "2.2.2.2", "Te", "trailers", "User-Agent", "u", "", false, true)
	f.Add("x-forwarded-port", "1", "X-Forwarded-Prefix", "/q", "Forwarded", "for=x", "/api", true, true)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3, prefix string, trusted, tlsOn bool) {
		mk := func() *http.Request {
			u, _ := url.Parse("http://10.0.0.7:8080/x")
			r := &http.Request{Method: "GET", URL: u, Host: "h", Header: http.Header{}, RemoteAddr: "192.0.2.1:5555"}
			r.Header.Add(k1, v1)
			r.Header[k2] = append(r.Header[k2], v2)
			r.Header[k3] = []string{v3, v1}
			if tlsOn {
				r.TLS = &tls.ConnectionState{}
			}
			return r.WithContext(context.WithValue(context.Background(), http.LocalAddrContextKey,
				&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}))
		}
		fromMap, fromFields, me, fe := writeMapAndFields(mk, trusted, prefix)
		if (me == nil) != (fe == nil) || fromMap != fromFields {
			t.Fatalf("fields wrote %q (%v)\nthe map     %q (%v)", fromFields, fe, fromMap, me)
		}
	})
}
