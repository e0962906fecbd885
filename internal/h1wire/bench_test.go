package h1wire

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkParseHead parses a browser's request for a script (17 lines,
// 905 bytes) into a reused Request, as a connection loop with pooled
// buffers would.
func BenchmarkParseHead(b *testing.B) {
	head := []byte(browserGET)
	var r Request
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHead(head, &r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadHead is the same through a reused bufio.Reader.
func BenchmarkReadHead(b *testing.B) {
	sr := strings.NewReader(browserGET)
	br := bufio.NewReader(sr)
	var r Request
	b.SetBytes(int64(len(browserGET)))
	b.ReportAllocs()
	for b.Loop() {
		sr.Reset(browserGET)
		br.Reset(sr)
		if err := ReadHead(br, &r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetHTTPReadRequest is net/http's parser on the same bytes, for
// scale.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	sr := strings.NewReader(browserGET)
	br := bufio.NewReader(sr)
	b.SetBytes(int64(len(browserGET)))
	b.ReportAllocs()
	for b.Loop() {
		sr.Reset(browserGET)
		br.Reset(sr)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseHeadAllocs: a reused Request parses without allocating, with
// every kind of framing.
func TestParseHeadAllocs(t *testing.T) {
	for _, head := range []string{
		browserGET,
		req("POST /api HTTP/1.1", "Host: a", "Content-Length: 5", "Connection: close"),
		req("POST http://a/x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Trailer: X"),
		req("CONNECT a:443 HTTP/1.1", "Host: a:443"),
	} {
		var r Request
		b := []byte(head)
		if _, err := ParseHead(b, &r, Limits{}); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseHead(b, &r, Limits{}) }); n != 0 {
			t.Errorf("ParseHead(%q) allocates %v times, want 0", head, n)
		}
	}
}
