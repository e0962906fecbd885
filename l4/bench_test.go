package l4

import (
	"io"
	"net"
	"testing"

	"github.com/swarmgate/swarmgate/balancer"
)

// BenchmarkTCPRoute measures client -> edge -> backend throughput of one
// connection, the backend discarding. Compare with BenchmarkDirect (no edge)
// for the cost of the extra hop.
func BenchmarkTCPRoute(b *testing.B) {
	benchThroughput(b, true)
}

func BenchmarkDirect(b *testing.B) { benchThroughput(b, false) }

func benchThroughput(b *testing.B, viaEdge bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(done)
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	addr := ln.Addr().String()
	var e *Engine
	if viaEdge {
		e = New(Options{ListenHost: "127.0.0.1"})
		r := &Route{ID: "bench", Endpoints: nil}
		r.Endpoints = append(r.Endpoints, newBenchPool().Endpoint(addr))
		if err := e.Update(&Table{TCP: map[int]*Route{0: r}}); err != nil {
			b.Fatal(err)
		}
		addr = e.Addr(0).String()
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 1<<20)
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if n := <-done; n != int64(b.N)*int64(len(block)) {
		b.Fatalf("backend got %d bytes", n)
	}
	b.StopTimer()
	c.Close()
	ln.Close()
	if e != nil {
		e.Close()
		e.Drain(b.Context())
	}
}

func newBenchPool() *balancer.Pool { return balancer.NewPool(balancer.PoolOptions{}) }
