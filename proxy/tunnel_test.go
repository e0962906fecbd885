package proxy

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
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
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := testkit.Receive(t, accepted, 5*time.Second, "accept")
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestCopyIdleFree: the tunnel's copy from a plain TCP connection carries
// every byte in order, small writes and a large one, across idle gaps,
// and ends at the source's EOF, at its read deadline and at its Close.
func TestCopyIdleFree(t *testing.T) {
	t.Run("bytes and EOF", func(t *testing.T) {
		w, src := tcpPair(t)
		var dst bytes.Buffer
		done := make(chan int64, 1)
		rc := mustRaw(t, src)
		go func() { done <- copyIdleFree(&dst, rc) }()
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		var want []byte
		for _, p := range [][]byte{[]byte("a"), []byte("hello"), big, []byte("end")} {
			w.Write(p)
			want = append(want, p...)
			time.Sleep(10 * time.Millisecond) // idle between messages
		}
		w.CloseWrite()
		n := testkit.Receive(t, done, 5*time.Second, "copy to end at EOF")
		if n != int64(len(want)) || !bytes.Equal(dst.Bytes(), want) {
			t.Fatalf("copied %d bytes (%d in dst), want %d, equal %v", n, dst.Len(), len(want), bytes.Equal(dst.Bytes(), want))
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		_, src := tcpPair(t)
		done := make(chan int64, 1)
		rc := mustRaw(t, src)
		go func() { done <- copyIdleFree(io.Discard, rc) }()
		src.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		testkit.Receive(t, done, 5*time.Second, "copy to end at the read deadline")
	})
	t.Run("close", func(t *testing.T) {
		_, src := tcpPair(t)
		done := make(chan int64, 1)
		rc := mustRaw(t, src)
		go func() { done <- copyIdleFree(io.Discard, rc) }()
		time.Sleep(20 * time.Millisecond)
		src.Close()
		testkit.Receive(t, done, 5*time.Second, "copy to end at Close")
	})
	t.Run("write error", func(t *testing.T) {
		w, src := tcpPair(t)
		done := make(chan int64, 1)
		rc := mustRaw(t, src)
		go func() { done <- copyIdleFree(failWriter{}, rc) }()
		w.Write([]byte("x"))
		if n := testkit.Receive(t, done, 5*time.Second, "copy to end at a failed write"); n != 0 {
			t.Errorf("copied %d bytes to a writer that failed; want 0", n)
		}
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func mustRaw(t *testing.T, c *net.TCPConn) syscall.RawConn {
	t.Helper()
	rc := rawConn(c)
	if rc == nil {
		t.Fatal("no raw connection for a *net.TCPConn")
	}
	return rc
}
