package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/swarmgate/swarmgate/internal/h1wire"
)

// BenchmarkUpstreamHead: the upstream hop's own work per request, without
// sockets: writing a forwarded GET's head (writeRequest against net/http's
// Request.Write) and reading a small response (h1wire and newResponse,
// body read to its end, against http.ReadResponse).
func BenchmarkUpstreamHead(b *testing.B) {
	u, _ := url.Parse("http://10.0.0.7:8080/bench?x=1")
	req := &http.Request{Method: "GET", URL: u, Host: "app.example.org", Header: http.Header{
		"Accept": {"*/*"}, "User-Agent": {"bench"}, "X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"},
		"X-Forwarded-Host": {"app.example.org"}, "X-Forwarded-Port": {"8080"}, "X-Real-Ip": {"127.0.0.1"},
		"X-Request-Id": {"0123456789abcdef0123456789abcdef"},
	}}
	bw := bufio.NewWriterSize(io.Discard, 16<<10)
	b.Run("write/own", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeRequest(bw, req)
			bw.Flush()
		}
	})
	b.Run("write/net-http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req.Write(bw)
			bw.Flush()
		}
	})
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Thu, 03 Dec 2026 13:00:00 GMT\r\nContent-Length: 13\r\n\r\nb GET /bench!")
	rd := bytes.NewReader(raw)
	br := bufio.NewReaderSize(rd, 16<<10)
	b.Run("read/own", func(b *testing.B) {
		b.ReportAllocs()
		pc := &h1Conn{br: br}
		for b.Loop() {
			rd.Reset(raw)
			br.Reset(rd)
			if err := h1wire.ReadResponseHead(br, &pc.head, false, responseLimits, &pc.spill); err != nil {
				b.Fatal(err)
			}
			resp := newResponse(&pc.head, req, new(h1Response), nil)
			body := &h1Body{pc: pc, trailer: &resp.Trailer}
			body.frame()
			io.Copy(io.Discard, body)
		}
	})
	b.Run("read/net-http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(raw)
			br.Reset(rd)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
		}
	})
}
