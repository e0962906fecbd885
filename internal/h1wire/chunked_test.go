package h1wire

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readChunked(body string, lim Limits, size int) (string, *ChunkedReader, error) {
	var c ChunkedReader
	c.Reset(bufio.NewReaderSize(strings.NewReader(body), size), lim)
	data, err := io.ReadAll(&c)
	return string(data), &c, err
}

// TestChunkedRefuses has one row per chunked-coding rule (RFC 9112 section
// 7.1).
func TestChunkedRefuses(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       error
	}{
		{"empty size", "\r\n", errChunkSize},
		{"non-hex size", "g\r\nx\r\n0\r\n\r\n", errChunkSize},
		{"negative size", "-1\r\n", errChunkSize},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"space after size", "5 \r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"space before ext", "5 ;a\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"space in ext", "5; a\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"empty ext", "5;\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"ext without name", "5;=x\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"ext empty value", "5;a=\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"ext open quote", "5;a=\"x\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"ext NUL", "5;a\x00\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", errChunkOverflow},
		{"over 2^63-1", "8000000000000000\r\n", errChunkOverflow},
		{"size line too long", "5;a=" + strings.Repeat("b", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n", errChunkLine},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", errBareLF},
		{"bare CR in size line", "5\r;a\r\nhello\r\n0\r\n\r\n", errBareCR},
		{"data longer than size", "5\r\nhello!\r\n0\r\n\r\n", errChunkEnd},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", errChunkEnd},
		{"no CRLF after data", "5\r\nhello0\r\n\r\n", errChunkEnd},
		{"bare LF after last chunk", "0\r\n\n", errBareLF},
		{"trailer bare LF", "0\r\nX: y\n\r\n", errBareLF},
		{"trailer obs-fold", "0\r\nX: y\r\n z\r\n\r\n", errObsFold},
		{"trailer space before colon", "0\r\nX : y\r\n\r\n", errSpaceColon},
		{"trailer CTL", "0\r\nX: \x01\r\n\r\n", errFieldValue},
		{"trailer Content-Length", "0\r\nContent-Length: 5\r\n\r\n", errTrailerName},
		{"trailer Transfer-Encoding", "0\r\nTransfer-Encoding: chunked\r\n\r\n", errTrailerName},
		{"trailer too large", "0\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", errTrailerSize},
		{"too many trailers", "0\r\n" + strings.Repeat("X: y\r\n", 101) + "\r\n", errTooMany},
		{"overhead", strings.Repeat("1;"+strings.Repeat("a", 100)+"\r\nx\r\n", 200) + "0\r\n\r\n", errChunkOverhead},
		{"cut in size", "5", io.ErrUnexpectedEOF},
		{"cut in data", "5\r\nhel", io.ErrUnexpectedEOF},
		{"cut before CRLF", "5\r\nhello", io.ErrUnexpectedEOF},
		{"cut in trailer", "0\r\nX: y\r\n", io.ErrUnexpectedEOF},
		{"no last chunk", "5\r\nhello\r\n", io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readChunked(c.body, Limits{}, 8192)
			if err != c.want {
				t.Fatalf("decoding %q: %v, want %v", c.body, err, c.want)
			}
		})
	}
}

func TestChunkedAccepts(t *testing.T) {
	for _, c := range []struct {
		name, body, data string
		trailers         int
	}{
		{"empty", "0\r\n\r\n", "", 0},
		{"two chunks", "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n", "hello, world", 0},
		{"hex any case", "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", strings.Repeat("0123456789", 2), 0},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 0},
		{"16 hex digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", "hello", 0},
		{"extensions", "5;a;b=c;d=\"e \\\" f\"\r\nhello\r\n0;last\r\n\r\n", "hello", 0},
		{"trailers", "5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:  d \r\n\r\n", "hello", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, cr, err := readChunked(c.body+"NEXT", Limits{}, 64)
			if err != nil || data != c.data {
				t.Fatalf("decoding %q = %q, %v; want %q", c.body, data, err, c.data)
			}
			if len(cr.Trailer) != c.trailers {
				t.Fatalf("%d trailers, want %d", len(cr.Trailer), c.trailers)
			}
			if c.trailers > 0 && string(cr.Trailer[1].Value) != "d" {
				t.Errorf("trailer value %q", cr.Trailer[1].Value)
			}
			// The reader stops at the end of the body: the next request's
			// bytes are left.
			rest, _ := io.ReadAll(cr.br)
			want(t, "left over", string(rest), "NEXT")
		})
	}
	// A byte at a time, through the smallest buffer.
	var c ChunkedReader
	c.Reset(bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader("5\r\nhello\r\n0\r\n\r\n")), 16), Limits{})
	if data, err := io.ReadAll(&c); err != nil || string(data) != "hello" {
		t.Fatalf("one byte at a time: %q %v", data, err)
	}
}

// TestChunkedAllocs: a reused reader decodes without allocating.
func TestChunkedAllocs(t *testing.T) {
	body := "5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: abc\r\n\r\n"
	sr := strings.NewReader(body)
	br := bufio.NewReader(sr)
	var c ChunkedReader
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		sr.Reset(body)
		br.Reset(sr)
		c.Reset(br, Limits{})
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per body, want 0", allocs)
	}
}
