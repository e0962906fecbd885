package h1serve

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchRequest is a browser's request for a script, as h1wire's benchmarks
// use.
const benchRequest = "GET /static/js/app.3f9a1c.js?v=2 HTTP/1.1\r\n" +
	"Host: app.example.org\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n" +
	"Accept: */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://app.example.org/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"If-None-Match: \"5d8c72a5edda8d6a\"\r\n" +
	"\r\n"

var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/javascript")
	w.Header().Set("X-Request-Id", "0123456789abcdef")
	io.WriteString(w, "console.log(1)\n")
})

// BenchmarkKeepAlive: one keep-alive connection through loopback, a
// request at a time, net/http's server against this one. The client reads
// a fixed-size response without allocating, so allocs/op are the server's;
// cpu-ns/op is the process's CPU time per request.
func BenchmarkKeepAlive(b *testing.B) {
	b.Run("stdlib", func(b *testing.B) {
		ln := listen(b)
		s := &http.Server{Handler: benchHandler}
		go s.Serve(ln)
		defer s.Close()
		keepAlive(b, ln.Addr().String())
	})
	b.Run("h1serve", func(b *testing.B) {
		keepAlive(b, serve(b, &Server{Handler: benchHandler}))
	})
}

func listen(b testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

func keepAlive(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte(benchRequest)
	size := responseSize(b, c, req)
	buf := make([]byte, size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time in nanoseconds: on a
// busy machine it swings less than wall time, and it is what a request
// costs (the client's share included, the same for both servers).
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// responseSize reads one response and returns its size: every response
// to the benchmark's request has it (Date has a fixed width).
func responseSize(b *testing.B, c net.Conn, req []byte) int {
	c.Write(req)
	br := bufio.NewReader(c)
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		head = append(head, line...)
	}
	i := bytes.Index(head, []byte("Content-Length: "))
	j := bytes.IndexByte(head[i:], '\r')
	n, _ := strconv.Atoi(string(head[i+16 : i+j]))
	br.Discard(n)
	if br.Buffered() != 0 {
		b.Fatal("response longer than it said")
	}
	return len(head) + n
}

// TestIdleMemory opens idleConns keep-alive connections, each after one
// request, and reports what the server holds per idle connection (heap
// and stacks), beside Go's floor and net/http's server; it fails if what an
// idle connection holds over the floor is more than half of net/http's.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const idleConns = 2000
	perConn := map[string]float64{}
	for _, engine := range []string{"floor", "h1serve", "stdlib"} {
		ln := listen(t)
		addr := ln.Addr().String()
		var stop func()
		switch engine {
		case "floor":
			// Go's floor: a goroutine per connection blocked in a 1-byte
			// read, after answering one request from a stack buffer.
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						var buf [1024]byte
						c.Read(buf[:])
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
						c.Read(buf[:1])
					}()
				}
			}()
			stop = func() { ln.Close() }
		case "stdlib":
			s := &http.Server{Handler: benchHandler, IdleTimeout: time.Minute}
			go s.Serve(ln)
			stop = func() { s.Close() }
		default:
			ln.Close()
			addr = serve(t, &Server{Handler: benchHandler})
			stop = func() {}
		}
		before, rssBefore := memInUse(), rss()
		conns := make([]net.Conn, 0, idleConns)
		buf := make([]byte, 4096)
		for range idleConns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			c.Write([]byte(benchRequest))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
		after, rssAfter := memInUse(), rss()
		perConn[engine] = float64(int64(after)-int64(before)) / idleConns
		t.Logf("%s: %d idle connections hold %.1f KiB each in heap and stacks, %.1f KiB of RSS (client side included)",
			engine, idleConns, float64(after-before)/idleConns/1024, float64(rssAfter-rssBefore)/idleConns/1024)
		for _, c := range conns {
			c.Close()
		}
		stop()
	}
	// What each server adds to Go's floor (a goroutine blocked in a read,
	// and the client's side): h1serve's must be under half of net/http's.
	// Relative to the floor, because the race detector and a busy machine
	// move all three (without -race: floor 4.2, h1serve 5.3, net/http 17.7
	// KiB; with it: 6.2, 8.8, 17.8). The absolute figure is a benchmark's:
	// bench's idle suite measures the edge's RSS per idle connection.
	floor := perConn["floor"]
	if own, std := perConn["h1serve"]-floor, perConn["stdlib"]-floor; own > std/2 {
		t.Fatalf("an idle connection holds %.0f bytes over Go's floor, net/http's %.0f: want under half of net/http's", own, std)
	}
}

// rss is the process's resident set size, 0 where /proc is not there.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// memInUse is the heap in use and the goroutine stacks after two
// collections (the second shrinks the stacks the first found oversized).
func memInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
