package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// staleConn is a pooled upstream connection whose path broke while it was
// idle: writes are taken, and the read meets the user timeout (data left
// unacknowledged), as after a partition or a lost node.
type staleConn struct {
	net.Conn // nil: only what the transport calls is implemented
	reads    *int
}

func (c staleConn) Write(p []byte) (int, error) { return len(p), nil }
func (c staleConn) Read([]byte) (int, error) {
	*c.reads++
	return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}
}
func (staleConn) Close() error                     { return nil }
func (staleConn) SetDeadline(time.Time) error      { return nil }
func (staleConn) SetReadDeadline(time.Time) error  { return nil }
func (staleConn) SetWriteDeadline(time.Time) error { return nil }

// poolStale puts a stale connection to addr in tr's pool and returns the
// count of reads on it.
func poolStale(tr *h1Transport, addr string) *int {
	n := new(int)
	c := staleConn{reads: n}
	tr.put(&h1Conn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c), addr: addr}, time.Time{})
	return n
}

// TestClosedByPeer: the ends of a connection an upstream closed while idle
// are retried on a new connection to the same task; a timeout or an
// unreachable address (a partition, a lost node) is not.
func TestClosedByPeer(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{&os.SyscallError{Syscall: "write", Err: syscall.EPIPE}, true},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}, false},
		{os.ErrDeadlineExceeded, false},
		{syscall.EHOSTUNREACH, false},
	} {
		if got := closedByPeer(tt.err); got != tt.want {
			t.Errorf("closedByPeer(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestH1StaleConnDropsIdle: a pooled connection that times out is reported
// as stale (not retried on the same task) and takes the address's other
// idle connections with it.
func TestH1StaleConnDropsIdle(t *testing.T) {
	tr := newH1(t)
	const addr = "192.0.2.1:80" // never dialed: the pool answers
	first, second := poolStale(tr, addr), poolStale(tr, addr)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, errStaleConn) || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("RoundTrip on a stale pooled connection: %v; want %v", err, errStaleConn)
	}
	if *first+*second != 1 {
		t.Errorf("%d reads on the two stale connections; want 1 (the other is dropped, not tried)", *first+*second)
	}
	if pc := tr.takeIdle(addr, time.Time{}); pc != nil {
		t.Errorf("an idle connection to %s is still pooled after one went stale", addr)
	}
}

// TestProxyRetriesStaleConnFresh is the edge's view of a partition: both of
// a route's tasks have pooled connections whose path broke. The request
// that meets the first goes to the other task on a new connection (which
// works) instead of its stale pooled one, and is answered; a POST with a
// body, which may have reached the task, is not replayed.
func TestProxyRetriesStaleConnFresh(t *testing.T) {
	a, b := testkit.Backend(t, "a"), testkit.Backend(t, "b")
	e := startEdge(t, route.Config{Routes: []route.Route{
		testkit.Route("web", []string{"web.test"}, "/", testkit.Addr(a), testkit.Addr(b)),
	}})
	tr := e.p.tr.plain
	ra, rb := poolStale(tr, testkit.Addr(a)), poolStale(tr, testkit.Addr(b))
	resp := testkit.Request(t, e.client, "GET", e.url+"/x", "web.test", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET after a stale pooled connection: %d %s; want 200 from the other task", resp.StatusCode, body)
	}
	if *ra+*rb != 1 {
		t.Errorf("%d reads on stale connections (a %d, b %d); want 1: the retry dials a new connection", *ra+*rb, *ra, *rb)
	}

	// A POST with a body meets a stale connection: 502, not replayed.
	tr.CloseIdleConnections()
	ra, rb = poolStale(tr, testkit.Addr(a)), poolStale(tr, testkit.Addr(b))
	resp = testkit.Request(t, e.client, "POST", e.url+"/x", "web.test", strings.NewReader("order=1"))
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("POST on a stale pooled connection: %d %s; want 502 (it may have reached the task)", resp.StatusCode, body)
	}
}
