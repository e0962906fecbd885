package h1wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

func resp(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// TestParseResponseHeadRefuses has one row per rule: an upstream response
// that a second parser (the client, a cache) could frame differently is
// refused, so that a proxy never passes on a split response.
func TestParseResponseHeadRefuses(t *testing.T) {
	long := strings.Repeat("a", 9000)
	for _, c := range []struct {
		name, head string
		want       *Error
	}{
		{"CL with TE", resp("HTTP/1.1 200 OK", "Content-Length: 3", "Transfer-Encoding: chunked"), errCLTE},
		{"TE with CL", resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 3"), errCLTE},
		{"CL with TE on 304", resp("HTTP/1.1 304 Not Modified", "Content-Length: 3", "Transfer-Encoding: chunked"), errCLTE},
		{"TE gzip", resp("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"), errTE},
		{"TE gzip, chunked", resp("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"), errTE},
		{"TE chunked twice", resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), errTE},
		{"TE identity", resp("HTTP/1.1 200 OK", "Transfer-Encoding: identity"), errTE},
		{"TE in HTTP/1.0", resp("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), errRespTE},
		{"CL differing", resp("HTTP/1.1 200 OK", "Content-Length: 3", "Content-Length: 4"), errCLDiffer},
		{"CL differing spelling", resp("HTTP/1.1 200 OK", "Content-Length: 3", "Content-Length: 03"), errCLDiffer},
		{"CL list", resp("HTTP/1.1 200 OK", "Content-Length: 3, 3"), errCLInvalid},
		{"CL sign", resp("HTTP/1.1 200 OK", "Content-Length: +3"), errCLInvalid},
		{"CL negative", resp("HTTP/1.1 200 OK", "Content-Length: -1"), errCLInvalid},
		{"CL empty", resp("HTTP/1.1 200 OK", "Content-Length:"), errCLInvalid},
		{"CL hex", resp("HTTP/1.1 200 OK", "Content-Length: 0x10"), errCLInvalid},
		{"CL overflow", resp("HTTP/1.1 200 OK", "Content-Length: 9223372036854775808"), errCLInvalid},
		{"Trailer names Content-Length", resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: X, Content-Length"), errTrailerName},
		{"obs-fold", resp("HTTP/1.1 200 OK", "X-A: 1", " folded"), errObsFold},
		{"obs-fold tab", resp("HTTP/1.1 200 OK", "X-A: 1", "\tfolded"), errObsFold},
		{"space before colon", resp("HTTP/1.1 200 OK", "Content-Length : 3"), errSpaceColon},
		{"empty name", resp("HTTP/1.1 200 OK", ": v"), errFieldName},
		{"no colon", resp("HTTP/1.1 200 OK", "X-A"), errFieldName},
		{"NUL in value", resp("HTTP/1.1 200 OK", "X-A: a\x00b"), errFieldValue},
		{"CTL in value", resp("HTTP/1.1 200 OK", "X-A: a\x01b"), errFieldValue},
		{"bare CR in value", resp("HTTP/1.1 200 OK", "X-A: a\rb"), errBareCR},
		{"bare LF in field", "HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n", errBareLF},
		{"bare LF end", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\n", errBareLF},
		{"bare LF status line", "HTTP/1.1 200 OK\nX-A: 1\r\n\r\n", errBareLF},
		{"HTTP/2", resp("HTTP/2 200 OK"), errStatusLine},
		{"HTTP/1.2", resp("HTTP/1.2 200 OK"), errStatusLine},
		{"lower case version", resp("http/1.1 200 OK"), errStatusLine},
		{"two spaces before code", resp("HTTP/1.1  200 OK"), errStatusLine},
		{"two-digit code", resp("HTTP/1.1 20 OK"), errStatusLine},
		{"four-digit code", resp("HTTP/1.1 2000 OK"), errStatusLine},
		{"code under 100", resp("HTTP/1.1 099 Odd"), errStatusLine},
		{"code not digits", resp("HTTP/1.1 2x0 OK"), errStatusLine},
		{"tab after code", resp("HTTP/1.1 200\tOK"), errStatusLine},
		{"CTL in reason", resp("HTTP/1.1 200 O\x01K"), errFieldValue},
		{"CR in status line", resp("HTTP/1.1 200 O\rK"), errBareCR},
		{"status line too long", resp("HTTP/1.1 200 " + long), errRespLong},
		{"too many fields", resp("HTTP/1.1 200 OK", strings.Repeat("X: 1\r\n", 100)+"Y: 2"), errTooMany},
		{"head too large", resp("HTTP/1.1 200 OK", strings.Repeat("X-Long: "+long+"\r\n", 8)+"Y: 2"), errRespLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Response
			_, err := ParseResponseHead([]byte(c.head), &r, false, Limits{})
			if err != c.want {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			// net/http's client may accept it, never with other framing:
			// the refusal is the point. ReadResponseHead refuses it too.
			br := bufio.NewReaderSize(strings.NewReader(c.head), 64<<10)
			var spill []byte
			if err := ReadResponseHead(br, &r, false, Limits{}, &spill); err != c.want {
				t.Fatalf("ReadResponseHead: err %v, want %v", err, c.want)
			}
		})
	}
}

// TestParseResponseHeadFraming: how the body of an accepted response is
// framed (RFC 9112 section 6.3).
func TestParseResponseHeadFraming(t *testing.T) {
	for _, c := range []struct {
		name, head string
		head_      bool // a response to HEAD
		body       Body
		untilClose bool
		length     int64
		close      bool
		status     int
		text       string
	}{
		{"length", resp("HTTP/1.1 200 OK", "Content-Length: 5"), false, BodyLength, false, 5, false, 200, "200 OK"},
		{"identical lengths", resp("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5"), false, BodyLength, false, 5, false, 200, "200 OK"},
		{"zero length", resp("HTTP/1.1 200 OK", "Content-Length: 0"), false, BodyNone, false, 0, false, 200, "200 OK"},
		{"chunked", resp("HTTP/1.1 200 OK", "Transfer-Encoding: Chunked"), false, BodyChunked, false, -1, false, 200, "200 OK"},
		{"until close", resp("HTTP/1.1 200 OK"), false, BodyNone, true, -1, true, 200, "200 OK"},
		{"HTTP/1.0 until close", resp("HTTP/1.0 200 OK", "Connection: keep-alive"), false, BodyNone, true, -1, true, 200, "200 OK"},
		{"HTTP/1.0 length", resp("HTTP/1.0 200 OK", "Content-Length: 2"), false, BodyLength, false, 2, true, 200, "200 OK"},
		{"HTTP/1.0 keep-alive", resp("HTTP/1.0 200 OK", "Connection: Keep-Alive", "Content-Length: 2"), false, BodyLength, false, 2, false, 200, "200 OK"},
		{"close", resp("HTTP/1.1 200 OK", "Connection: close", "Content-Length: 2"), false, BodyLength, false, 2, true, 200, "200 OK"},
		{"HEAD", resp("HTTP/1.1 200 OK", "Content-Length: 1000"), true, BodyNone, false, 1000, false, 200, "200 OK"},
		{"HEAD chunked", resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), true, BodyNone, false, -1, false, 200, "200 OK"},
		{"HEAD no length", resp("HTTP/1.1 200 OK"), true, BodyNone, false, -1, false, 200, "200 OK"},
		{"100", resp("HTTP/1.1 100 Continue"), false, BodyNone, false, -1, false, 100, "100 Continue"},
		{"103", resp("HTTP/1.1 103 Early Hints", "Link: </a>; rel=preload"), false, BodyNone, false, -1, false, 103, "103 Early Hints"},
		{"204", resp("HTTP/1.1 204 No Content", "Content-Length: 7"), false, BodyNone, false, 7, false, 204, "204 No Content"},
		{"304 chunked", resp("HTTP/1.1 304 Not Modified", "Transfer-Encoding: chunked"), false, BodyNone, false, -1, false, 304, "304 Not Modified"},
		{"no reason", resp("HTTP/1.1 404"), false, BodyNone, true, -1, true, 404, "404"},
		{"empty reason", resp("HTTP/1.1 404 ", "Content-Length: 0"), false, BodyNone, false, 0, false, 404, "404 "},
		{"reason with obs-text", resp("HTTP/1.1 200 \xe9t\xe9 ok", "Content-Length: 0"), false, BodyNone, false, 0, false, 200, "200 \xe9t\xe9 ok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Response
			n, err := ParseResponseHead([]byte(c.head+"body"), &r, c.head_, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			want(t, "length of head", n, len(c.head))
			want(t, "body", r.Body, c.body)
			want(t, "until close", r.UntilClose, c.untilClose)
			want(t, "content length", r.ContentLength, c.length)
			want(t, "close", r.Close, c.close)
			want(t, "status", r.Status, c.status)
			want(t, "status text", string(r.StatusText), c.text)
		})
	}
}

// TestReadResponseHeadSpills: a head larger than the reader's buffer is
// gathered in the spill buffer, and the body follows it in the reader.
func TestReadResponseHeadSpills(t *testing.T) {
	big := strings.Repeat("v", 3000)
	head := resp("HTTP/1.1 200 OK", "X-1: "+big, "X-2: "+big, "Content-Length: 4")
	br := bufio.NewReaderSize(strings.NewReader(head+"body"), 4096)
	var r Response
	var spill []byte
	if err := ReadResponseHead(br, &r, false, Limits{MaxHeaderBytes: 1 << 20}, &spill); err != nil {
		t.Fatal(err)
	}
	want(t, "fields", len(r.Fields), 3)
	want(t, "X-2", string(r.Fields[1].Value), big)
	rest, _ := io.ReadAll(br)
	want(t, "rest", string(rest), "body")

	br = bufio.NewReaderSize(strings.NewReader(head), 4096)
	if err := ReadResponseHead(br, &r, false, Limits{MaxHeaderBytes: 5000}, &spill); err != errRespLarge {
		t.Fatalf("err %v, want %v", err, errRespLarge)
	}
	br = bufio.NewReaderSize(strings.NewReader(head[:5000]), 4096)
	if err := ReadResponseHead(br, &r, false, Limits{MaxHeaderBytes: 1 << 20}, &spill); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut short: err %v, want io.ErrUnexpectedEOF", err)
	}
	br = bufio.NewReaderSize(strings.NewReader(""), 4096)
	if err := ReadResponseHead(br, &r, false, Limits{}, &spill); err != io.EOF {
		t.Fatalf("nothing: err %v, want io.EOF", err)
	}
}

// respParsed is what both parsers must agree on when both accept a response.
type respParsed struct {
	status int
	header map[string][]string
	body   string
	close  bool
}

// framingFields are fields net/http rewrites in the header it returns.
var framingFields = []string{"Content-Length", "Transfer-Encoding", "Trailer", "Connection", "Cache-Control"}

func parseRespOurs(data []byte, head bool) (*respParsed, error) {
	var r Response
	n, err := ParseResponseHead(data, &r, head, Limits{})
	if err != nil {
		return nil, err
	}
	p := &respParsed{status: r.Status, header: map[string][]string{}, close: r.Close}
	for _, f := range r.Fields {
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		p.header[k] = append(p.header[k], string(f.Value))
	}
	for _, k := range framingFields {
		delete(p.header, k)
	}
	body := data[n:]
	switch {
	case r.Body == BodyLength:
		if int64(len(body)) < r.ContentLength {
			return nil, io.ErrUnexpectedEOF
		}
		p.body = string(body[:r.ContentLength])
	case r.Body == BodyChunked:
		var c ChunkedReader
		c.Reset(bufio.NewReader(bytes.NewReader(body)), Limits{})
		b, err := io.ReadAll(&c)
		if err != nil {
			return nil, err
		}
		p.body = string(b)
	case r.UntilClose:
		p.body = string(body)
	}
	return p, nil
}

func parseRespNetHTTP(data []byte, head bool) (*respParsed, error) {
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	p := &respParsed{status: resp.StatusCode, header: map[string][]string(resp.Header), body: string(b), close: resp.Close}
	for _, k := range framingFields {
		delete(p.header, k)
	}
	return p, nil
}

// compareRespWithNetHTTP: ParseResponseHead never accepts a response that
// http.ReadResponse refuses, and where both accept, they agree on the
// status, the fields, the body and whether the connection closes.
func compareRespWithNetHTTP(t *testing.T, data []byte, head bool) {
	ours, oerr := parseRespOurs(data, head)
	theirs, terr := parseRespNetHTTP(data, head)
	if oerr != nil {
		var e *Error
		if !errors.As(oerr, &e) && oerr != io.ErrUnexpectedEOF && oerr != ErrIncomplete {
			t.Fatalf("refusal is not an *Error: %v", oerr)
		}
		return
	}
	if terr != nil {
		t.Fatalf("accepted what net/http refuses (%v): %q", terr, data)
	}
	if !reflect.DeepEqual(ours, theirs) {
		t.Fatalf("ours %+v\nnet/http %+v\nfor %q", ours, theirs, data)
	}
}

func FuzzResponseAgainstNetHTTP(f *testing.F) {
	for _, s := range []string{
		resp("HTTP/1.1 200 OK", "Content-Length: 5") + "hello",
		resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: X-Sum") + "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
		resp("HTTP/1.0 200 OK") + "until close",
		resp("HTTP/1.1 204 No Content", "Content-Length: 3") + "abc",
		resp("HTTP/1.1 304 Not Modified", "ETag: \"x\""),
		resp("HTTP/1.1 200 OK", "Content-Length: 3", "Transfer-Encoding: chunked") + "0\r\n\r\n",
		resp("HTTP/1.1 200 OK", "X-A: 1", " fold") + "",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		resp("HTTP/1.1 200", "Pragma: no-cache", "Connection: close", "Content-Length: 1") + "x",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) { compareRespWithNetHTTP(t, data, head) })
}

// TestResponseAgreesWithNetHTTP runs the fuzz seeds, and responses net/http
// accepts that ParseResponseHead refuses.
func TestResponseAgreesWithNetHTTP(t *testing.T) {
	for _, s := range []string{
		resp("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5", "X-A: 1", "x-a: 2") + "hello",
		resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\n\r\n",
		resp("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 2") + "hi",
		resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket"),
	} {
		compareRespWithNetHTTP(t, []byte(s), false)
		compareRespWithNetHTTP(t, []byte(s), true)
	}
	// net/http accepts these; a second parser could frame them otherwise.
	for _, s := range []string{
		resp("HTTP/1.1 200 OK", "Content-Length: 3", "Transfer-Encoding: chunked") + "0\r\n\r\n",
		resp("HTTP/1.0 200 OK", "Transfer-Encoding: chunked") + "0\r\n\r\n",
		resp("HTTP/1.1 200 OK", "X-A: 1", " folded", "Content-Length: 0"),
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		resp("HTTP/1.1  200 OK", "Content-Length: 0"),
	} {
		if _, err := parseRespNetHTTP([]byte(s), false); err != nil {
			t.Errorf("net/http refuses %q: %v", s, err)
		}
		if _, err := parseRespOurs([]byte(s), false); err == nil {
			t.Errorf("accepted %q", s)
		}
	}
}
