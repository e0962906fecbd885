package h1wire

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// req builds a head from lines, each given its CRLF, and the empty line.
func req(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// TestParseHeadRefuses has one row per rule of the strict framing list and
// per limit: the message, and the error (and so the status) it gets.
func TestParseHeadRefuses(t *testing.T) {
	long := strings.Repeat("a", 9000)
	for _, c := range []struct {
		name, head string
		want       *Error
		status     int
	}{
		// Content-Length and Transfer-Encoding (RFC 9112 section 6).
		{"CL with TE", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Transfer-Encoding: chunked"), errCLTE, 400},
		{"TE with CL", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 3"), errCLTE, 400},
		{"TE gzip", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip"), errTE, 400},
		{"TE gzip, chunked", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked"), errTE, 400},
		{"TE chunked, gzip", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, gzip"), errTE, 400},
		{"TE chunked twice", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), errTE, 400},
		{"TE two fields", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip", "Transfer-Encoding: chunked"), errTE, 400},
		{"TE chunked list", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, chunked"), errTE, 400},
		{"TE empty", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:"), errTE, 400},
		{"TE xchunked", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: xchunked"), errTE, 400},
		{"TE in HTTP/1.0", req("POST / HTTP/1.0", "Transfer-Encoding: chunked"), errTE10, 400},
		{"CL differing", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Content-Length: 4"), errCLDiffer, 400},
		{"CL differing spelling", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Content-Length: 03"), errCLDiffer, 400},
		{"CL list", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3, 3"), errCLInvalid, 400},
		{"CL sign", req("POST / HTTP/1.1", "Host: a", "Content-Length: +3"), errCLInvalid, 400},
		{"CL negative", req("POST / HTTP/1.1", "Host: a", "Content-Length: -1"), errCLInvalid, 400},
		{"CL hex", req("POST / HTTP/1.1", "Host: a", "Content-Length: 0x10"), errCLInvalid, 400},
		{"CL empty", req("POST / HTTP/1.1", "Host: a", "Content-Length:"), errCLInvalid, 400},
		{"CL inner space", req("POST / HTTP/1.1", "Host: a", "Content-Length: 1 2"), errCLInvalid, 400},
		{"CL 20 digits", req("POST / HTTP/1.1", "Host: a", "Content-Length: 00000000000000000001"), errCLInvalid, 400},
		{"CL over 2^63-1", req("POST / HTTP/1.1", "Host: a", "Content-Length: 9223372036854775808"), errCLInvalid, 400},
		{"Trailer names Content-Length", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Trailer: x, Content-Length"), errTrailerName, 400},

		// Field lines (RFC 9112 section 5, RFC 9110 section 5.5).
		{"space before colon", req("GET / HTTP/1.1", "Host : a"), errSpaceColon, 400},
		{"tab before colon", req("GET / HTTP/1.1", "Host\t: a"), errSpaceColon, 400},
		{"space before colon on CL", req("POST / HTTP/1.1", "Host: a", "Content-Length : 3"), errSpaceColon, 400},
		{"obs-fold", req("GET / HTTP/1.1", "Host: a", "X: b", " c"), errObsFold, 400},
		{"obs-fold tab", req("GET / HTTP/1.1", "Host: a", "X: b", "\tc"), errObsFold, 400},
		{"first field folded", req("GET / HTTP/1.1", " Host: a"), errObsFold, 400},
		{"no colon", req("GET / HTTP/1.1", "Host: a", "X"), errFieldName, 400},
		{"empty name", req("GET / HTTP/1.1", "Host: a", ": x"), errFieldName, 400},
		{"name with slash", req("GET / HTTP/1.1", "Host: a", "X/Y: x"), errFieldName, 400},
		{"name with NUL", req("GET / HTTP/1.1", "Host: a", "X\x00: x"), errFieldName, 400},
		{"NUL in value", req("GET / HTTP/1.1", "Host: a", "X: a\x00b"), errFieldValue, 400},
		{"CTL in value", req("GET / HTTP/1.1", "Host: a", "X: a\x01b"), errFieldValue, 400},
		{"DEL in value", req("GET / HTTP/1.1", "Host: a", "X: a\x7fb"), errFieldValue, 400},
		{"ESC in value", req("GET / HTTP/1.1", "Host: a", "X: \x1b[31m"), errFieldValue, 400},

		// Line ends (RFC 9112 section 2.2).
		{"bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", errBareLF, 400},
		{"bare LF after field", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", errBareLF, 400},
		{"bare LF ending head", "GET / HTTP/1.1\r\nHost: a\r\n\n", errBareLF, 400},
		{"bare CR in value", req("GET / HTTP/1.1", "Host: a", "X: a\rb"), errBareCR, 400},
		{"bare CR in name", req("GET / HTTP/1.1", "Host: a", "X\rY: b"), errBareCR, 400},
		{"bare CR in target", req("GET /a\rb HTTP/1.1", "Host: a"), errBareCR, 400},
		{"bare CR ending field", "GET / HTTP/1.1\r\nHost: a\r\rX: b\r\n\r\n", errBareCR, 400},
		{"CR CR LF", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", errBareCR, 400},

		// Request line (RFC 9112 section 3).
		{"no spaces", req("GET", "Host: a"), errRequestLine, 400},
		{"empty line first", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", errRequestLine, 400},
		{"two spaces", req("GET  / HTTP/1.1", "Host: a"), errRequestLine, 400},
		{"trailing space", req("GET / HTTP/1.1 ", "Host: a"), errVersion, 400},
		{"tab separator", req("GET\t/ HTTP/1.1", "Host: a"), errMethod, 400},
		{"method not token", req("G(T / HTTP/1.1", "Host: a"), errMethod, 400},
		{"lower-case version", req("GET / http/1.1", "Host: a"), errVersion, 400},
		{"version 2.0", req("GET / HTTP/2.0", "Host: a"), errVersion505, 505},
		{"version 1.2", req("GET / HTTP/1.2", "Host: a"), errVersion505, 505},
		{"version 0.9", "GET /\r\n\r\n", errRequestLine, 400},
		{"version junk", req("GET / HTTP/1.1x", "Host: a"), errVersion, 400},

		// Request-target forms (RFC 9112 section 3.2).
		{"space in target", req("GET /a b HTTP/1.1", "Host: a"), errVersion, 400},
		{"fragment", req("GET /a#b HTTP/1.1", "Host: a"), errTargetByte, 400},
		{"non-ASCII target", req("GET /caf\xc3\xa9 HTTP/1.1", "Host: a"), errTargetByte, 400},
		{"NUL in target", req("GET /\x00 HTTP/1.1", "Host: a"), errTargetByte, 400},
		{"bad escape", req("GET /a%zz HTTP/1.1", "Host: a"), errTargetEscape, 400},
		{"short escape", req("GET /a%2 HTTP/1.1", "Host: a"), errTargetEscape, 400},
		{"relative target", req("GET a/b HTTP/1.1", "Host: a"), errTargetForm, 400},
		{"asterisk with GET", req("GET * HTTP/1.1", "Host: a"), errTargetForm, 400},
		{"CONNECT origin-form", req("CONNECT / HTTP/1.1", "Host: a"), errTargetForm, 400},
		{"CONNECT without port", req("CONNECT a.example HTTP/1.1", "Host: a.example"), errTargetForm, 400},
		{"CONNECT asterisk", req("CONNECT * HTTP/1.1", "Host: a"), errTargetForm, 400},
		{"authority-form with GET", req("GET a.example:443 HTTP/1.1", "Host: a.example:443"), errTargetForm, 400},
		{"ftp scheme", req("GET ftp://a/ HTTP/1.1", "Host: a"), errTargetForm, 400},
		{"absolute-form userinfo", req("GET http://u:p@a/ HTTP/1.1", "Host: a"), errUserinfo, 400},
		{"absolute-form no host", req("GET http:///x HTTP/1.1", "Host: a"), errTargetForm, 400},
		{"absolute-form bad port", req("GET http://a:x/ HTTP/1.1", "Host: a:x"), errHost, 400},

		// Host (RFC 9112 section 3.2, RFC 9110 section 7.2).
		{"no Host", req("GET / HTTP/1.1"), errNoHost, 400},
		{"two Hosts", req("GET / HTTP/1.1", "Host: a", "Host: a"), errManyHosts, 400},
		{"two Hosts differing", req("GET / HTTP/1.1", "Host: a", "host: b"), errManyHosts, 400},
		{"two Hosts in HTTP/1.0", req("GET / HTTP/1.0", "Host: a", "Host: b"), errManyHosts, 400},
		{"empty Host", req("GET / HTTP/1.1", "Host:"), errHost, 400},
		{"Host with path", req("GET / HTTP/1.1", "Host: a/b"), errHost, 400},
		{"Host with userinfo", req("GET / HTTP/1.1", "Host: u@a"), errHost, 400},
		{"Host with space", req("GET / HTTP/1.1", "Host: a b"), errHost, 400},
		{"Host with escape", req("GET / HTTP/1.1", "Host: %41"), errHost, 400},
		{"Host empty port", req("GET / HTTP/1.1", "Host: a:"), errHost, 400},
		{"Host long port", req("GET / HTTP/1.1", "Host: a:123456"), errHost, 400},
		{"Host unclosed IPv6", req("GET / HTTP/1.1", "Host: [::1"), errHost, 400},
		{"Host IPv6 junk", req("GET / HTTP/1.1", "Host: [::g]"), errHost, 400},
		{"absolute-form other host", req("GET http://b/ HTTP/1.1", "Host: a"), errHostDiffers, 400},
		{"absolute-form other port", req("GET http://a:8080/ HTTP/1.1", "Host: a"), errHostDiffers, 400},
		{"authority-form other host", req("CONNECT b:443 HTTP/1.1", "Host: a:443"), errHostDiffers, 400},

		// Limits.
		{"request line too long", req("GET /"+long+" HTTP/1.1", "Host: a"), errLineTooLong, 414},
		{"head too large", req("GET / HTTP/1.1", "Host: a", "X: "+strings.Repeat(long, 8)), errHeadTooLarge, 431},
		{"too many fields", req(append([]string{"GET / HTTP/1.1", "Host: a"}, strings.Split(strings.Repeat("X: y\n", 100), "\n")[:100]...)...), errTooMany, 431},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Request
			_, err := ParseHead([]byte(c.head), &r, Limits{})
			if err != c.want {
				t.Fatalf("ParseHead(%q) = %v, want %v", c.head, err, c.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != c.status {
				t.Fatalf("error %v: status want %d", err, c.status)
			}
		})
	}
}

// TestParseHeadAccepts: what the strict rules still let through, and what
// the parser makes of it.
func TestParseHeadAccepts(t *testing.T) {
	for _, c := range []struct {
		name, head string
		check      func(t *testing.T, r *Request)
	}{
		{"browser GET", browserGET, func(t *testing.T, r *Request) {
			want(t, "method", string(r.Method), "GET")
			want(t, "path", string(r.Path), "/static/app.4f3a9c.js")
			want(t, "query", string(r.Query), "v=3&lang=en")
			want(t, "host", string(r.Host), "app.example.org")
			want(t, "fields", len(r.Fields), 16)
			want(t, "body", r.Body, BodyNone)
			want(t, "close", r.Close, false)
			ua, _ := r.Field("USER-AGENT")
			want(t, "user-agent", strings.HasPrefix(string(ua), "Mozilla/5.0"), true)
		}},
		{"POST with length", req("POST /api HTTP/1.1", "Host: a", "Content-Length: 12", "Connection: keep-alive, close"), func(t *testing.T, r *Request) {
			want(t, "body", r.Body, BodyLength)
			want(t, "length", r.ContentLength, int64(12))
			want(t, "close", r.Close, true)
		}},
		{"identical CL twice", req("POST / HTTP/1.1", "Host: a", "Content-Length: 7", "content-length:7 "), func(t *testing.T, r *Request) {
			want(t, "length", r.ContentLength, int64(7))
		}},
		{"CL max", req("POST / HTTP/1.1", "Host: a", "Content-Length: 9223372036854775807"), func(t *testing.T, r *Request) {
			want(t, "length", r.ContentLength, int64(1<<63-1))
		}},
		{"chunked any case", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:  Chunked\t"), func(t *testing.T, r *Request) {
			want(t, "body", r.Body, BodyChunked)
		}},
		{"HTTP/1.0 without Host", req("GET / HTTP/1.0"), func(t *testing.T, r *Request) {
			want(t, "minor", r.Minor, 0)
			want(t, "host", string(r.Host), "")
			want(t, "close", r.Close, true)
		}},
		{"HTTP/1.0 keep-alive", req("GET / HTTP/1.0", "Connection: Keep-Alive"), func(t *testing.T, r *Request) {
			want(t, "close", r.Close, false)
		}},
		{"HTTP/1.0 absolute-form takes Host", req("GET http://a.example:81/x HTTP/1.0"), func(t *testing.T, r *Request) {
			want(t, "host", string(r.Host), "a.example:81")
			want(t, "path", string(r.Path), "/x")
		}},
		{"absolute-form", req("GET HTTP://App.Example.org:8080?q HTTP/1.1", "Host: app.example.ORG:8080"), func(t *testing.T, r *Request) {
			want(t, "form", r.Form, AbsoluteForm)
			want(t, "path", string(r.Path), "")
			want(t, "query", string(r.Query), "q")
		}},
		{"https absolute-form", req("GET https://a/b%2Fc HTTP/1.1", "Host: a"), func(t *testing.T, r *Request) {
			want(t, "path", string(r.Path), "/b%2Fc")
		}},
		{"CONNECT", req("CONNECT a.example:443 HTTP/1.1", "Host: a.example:443"), func(t *testing.T, r *Request) {
			want(t, "form", r.Form, AuthorityForm)
		}},
		{"OPTIONS *", req("OPTIONS * HTTP/1.1", "Host: a"), func(t *testing.T, r *Request) {
			want(t, "form", r.Form, AsteriskForm)
		}},
		{"IPv6 Host", req("GET / HTTP/1.1", "Host: [2001:db8::1]:8443"), func(t *testing.T, r *Request) {
			want(t, "host", string(r.Host), "[2001:db8::1]:8443")
		}},
		{"odd but valid bytes", req("GET /a/{b}|c^d?x=[1]&y=%zz HTTP/1.1", "Host: a", "X-Empty:", "X-Obs: caf\xc3\xa9", "X-Tab: a\tb"), func(t *testing.T, r *Request) {
			want(t, "query", string(r.Query), "x=[1]&y=%zz") // the query is passed on as it came
			v, _ := r.Field("x-empty")
			want(t, "empty value", string(v), "")
			v, _ = r.Field("x-tab")
			want(t, "tab value", string(v), "a\tb")
		}},
		{"trailing whitespace trimmed", req("GET / HTTP/1.1", "Host: \t a \t "), func(t *testing.T, r *Request) {
			want(t, "host", string(r.Host), "a")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Request
			n, err := ParseHead([]byte(c.head+"BODY"), &r, Limits{})
			if err != nil {
				t.Fatalf("ParseHead(%q): %v", c.head, err)
			}
			want(t, "length", n, len(c.head))
			c.check(t, &r)
		})
	}
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestParseHeadIncomplete: every proper prefix of a valid head is
// ErrIncomplete, never a refusal, and limits decide before the end arrives.
func TestParseHeadIncomplete(t *testing.T) {
	head := []byte(browserGET)
	var r Request
	for i := range len(head) {
		if _, err := ParseHead(head[:i], &r, Limits{}); err != ErrIncomplete {
			t.Fatalf("prefix of %d bytes: %v, want ErrIncomplete", i, err)
		}
	}
	lim := Limits{MaxLine: 16, MaxHeaderBytes: 64}
	if _, err := ParseHead([]byte("GET /"+strings.Repeat("a", 20)), &r, lim); err != errLineTooLong {
		t.Errorf("long unfinished request line: %v, want 414", err)
	}
	if _, err := ParseHead([]byte("GET / HTTP/1.1\r\nX: "+strings.Repeat("a", 60)), &r, lim); err != errHeadTooLarge {
		t.Errorf("long unfinished head: %v, want 431", err)
	}
}

// TestReadHead reads pipelined heads from a bufio.Reader a byte at a time,
// and checks the ends of a connection.
func TestReadHead(t *testing.T) {
	two := req("GET /1 HTTP/1.1", "Host: a") + req("GET /2 HTTP/1.1", "Host: a")
	br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(two)), 1024)
	var r Request
	for _, p := range []string{"/1", "/2"} {
		if err := ReadHead(br, &r, Limits{}); err != nil {
			t.Fatal(err)
		}
		want(t, "path", string(r.Path), p)
	}
	if err := ReadHead(br, &r, Limits{}); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
	br = bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: a\r\n"))
	if err := ReadHead(br, &r, Limits{}); err != io.ErrUnexpectedEOF {
		t.Errorf("cut head: %v, want io.ErrUnexpectedEOF", err)
	}
	br = bufio.NewReaderSize(strings.NewReader("GET /"+strings.Repeat("a", 100)), 64)
	if err := ReadHead(br, &r, Limits{}); err != errLineTooLong {
		t.Errorf("request line over the buffer: %v, want 414", err)
	}
	br = bufio.NewReaderSize(strings.NewReader("GET / HTTP/1.1\r\nX: "+strings.Repeat("a", 100)), 64)
	if err := ReadHead(br, &r, Limits{}); err != errHeadTooLarge {
		t.Errorf("head over the buffer: %v, want 431", err)
	}
	br = bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader("GET /"+strings.Repeat("a", 100))), 1024)
	if err := ReadHead(br, &r, Limits{MaxLine: 50}); err != errLineTooLong {
		t.Errorf("request line over MaxLine, a byte at a time: %v, want 414", err)
	}
}

// browserGET is what a browser sends for a script on a page: the request
// the benchmark parses.
var browserGET = req(
	"GET /static/app.4f3a9c.js?v=3&lang=en HTTP/1.1",
	"Host: app.example.org",
	"Connection: keep-alive",
	`sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"`,
	"sec-ch-ua-mobile: ?0",
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	`sec-ch-ua-platform: "Linux"`,
	"Accept: */*",
	"Sec-Fetch-Site: same-origin",
	"Sec-Fetch-Mode: no-cors",
	"Sec-Fetch-Dest: script",
	"Referer: https://app.example.org/dashboard",
	"Accept-Encoding: gzip, deflate, br, zstd",
	"Accept-Language: en-US,en;q=0.9,de;q=0.8",
	"Cookie: session=3f9a1c2e8b7d4f6a; theme=dark; _ga=GA1.2.1234567890.1700000000",
	"If-None-Match: \"4f3a9c\"",
	"Priority: u=1",
)

// TestCheckValue compares the word-at-a-time value check with the byte
// table for every byte value at every position of a word, and a tail.
func TestCheckValue(t *testing.T) {
	for c := range 256 {
		for pos := range 11 {
			v := []byte("abcdefgh-ij")
			v[pos] = byte(c)
			want := checkValueBytes(v)
			if got := checkValue(v); got != want {
				t.Fatalf("checkValue(%q) = %v, want %v", v, got, want)
			}
		}
	}
}
