package rawio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// TestNewOnlyTCP: only a TCP connection has raw reads and writes.
func TestNewOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if New(a) != nil {
		t.Fatal("New took a net.Pipe")
	}
	c, _ := pair(t)
	if New(c) == nil {
		t.Fatal("New refused a TCP connection")
	}
}

// TestBothWays: 16 MiB each way at once, more than the socket buffers hold
// (the writes wait for the socket), arrive whole and in order.
func TestBothWays(t *testing.T) {
	a, b := pair(t)
	ra, rb := New(a), New(b)
	data := make([]byte, 16<<20)
	rand.Read(data)
	var wg sync.WaitGroup
	for _, ends := range [][2]*Conn{{ra, rb}, {rb, ra}} {
		w, r := ends[0], ends[1]
		wg.Add(2)
		go func() {
			defer wg.Done()
			for p := data; len(p) > 0; {
				k := min(len(p), 100<<10)
				n, err := w.Write(p[:k])
				if err != nil || n != k {
					t.Errorf("write %d of %d: %v", n, k, err)
					return
				}
				p = p[k:]
			}
		}()
		go func() {
			defer wg.Done()
			got := make([]byte, 0, len(data))
			buf := make([]byte, 7000)
			for len(got) < len(data) {
				n, err := r.Read(buf)
				if err != nil {
					t.Errorf("read after %d bytes: %v", len(got), err)
					return
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, data) {
				t.Error("the bytes read are not the bytes written")
			}
		}()
	}
	wg.Wait()
}

// TestDeadlinesAndEnds: a read waits for its deadline as net.Conn's does;
// the peer's close is io.EOF; a reset is ECONNRESET, wrapped as net's.
func TestDeadlinesAndEnds(t *testing.T) {
	a, b := pair(t)
	ra := New(a)
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := ra.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("the read returned after %v, before its deadline", d)
	}
	a.SetReadDeadline(time.Time{})
	b.Write([]byte("last"))
	b.Close()
	got, err := io.ReadAll(ra)
	if err != nil || string(got) != "last" {
		t.Fatalf("read to the end: %q %v", got, err)
	}

	c, d := pair(t)
	rc := New(c)
	d.SetLinger(0)
	d.Close() // a reset
	time.Sleep(20 * time.Millisecond)
	_, err = rc.Read(make([]byte, 10))
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read of a reset connection: %v", err)
	}
	_, err = rc.Write([]byte("x"))
	if err == nil {
		_, err = rc.Write([]byte("x"))
	}
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write to a reset connection: %v", err)
	}
}

// TestConcurrentWrites: writes from two goroutines take turns, each whole.
func TestConcurrentWrites(t *testing.T) {
	a, b := pair(t)
	ra := New(a)
	const n, size = 200, 3000
	var wg sync.WaitGroup
	for _, c := range []byte{'x', 'y'} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{c}, size)
			for range n {
				if _, err := ra.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := make([]byte, 2*n*size)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := 0; i < len(got); i += size {
		if !bytes.Equal(got[i:i+size], bytes.Repeat(got[i:i+1], size)) {
			t.Fatalf("message at %d interleaved", i)
		}
	}
}

// TestQuiet: an open, silent connection is quiet; one whose peer sent a
// byte, closed, or reset is not, and the check leaves the byte to read;
// a connection that is not a socket tells nothing.
func TestQuiet(t *testing.T) {
	quiet := func(c net.Conn) bool {
		t.Helper()
		q, ok := Quiet(c)
		if !ok {
			t.Fatal("Quiet: not a socket")
		}
		return q
	}
	eventually := func(what string, c net.Conn) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for quiet(c) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still quiet after 5s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	a, b := pair(t)
	start := time.Now()
	if !quiet(a) {
		t.Fatal("an open, silent connection is not quiet")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Quiet took %v: it must not wait", d)
	}
	b.Write([]byte("x"))
	eventually("a byte sent", a)
	buf := make([]byte, 1)
	if n, err := a.Read(buf); n != 1 || buf[0] != 'x' {
		t.Fatalf("after Quiet the byte reads as %q (%v)", buf[:n], err)
	}

	a, b = pair(t)
	b.Close()
	eventually("closed by the peer", a)

	a, b = pair(t)
	b.SetLinger(0)
	b.Close() // RST
	eventually("reset by the peer", a)

	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if _, ok := Quiet(p); ok {
		t.Fatal("Quiet took a net.Pipe for a socket")
	}
}
