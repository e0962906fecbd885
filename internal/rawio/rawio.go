// Package rawio reads and writes a TCP connection's socket with raw
// non-blocking read(2) and write(2), waiting for the socket in Go's
// netpoller as net.Conn does (deadlines included). The difference is the
// system call: net.Conn's goes through the scheduler's entersyscall, and
// the first such call after the process was idle wakes the runtime's
// monitor thread (sysmon), which then polls every 20 us for as long as
// any goroutine runs; a write on loopback, which runs the peer's receive
// path inside it, takes longer than that and has sysmon hand the
// processor to another thread. On a socket that never blocks neither is
// needed. At 2,000 proxied requests a second (one at a time) sysmon's
// wake-ups were a fifth of the edge's CPU (issue 16; golang/go#18236).
package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is the raw reader and writer of one TCP connection. Reads and
// writes may run together; concurrent Reads (or Writes) take turns, as
// net.Conn's do.
type Conn struct {
	tc *net.TCPConn
	rc syscall.RawConn

	rmu sync.Mutex // guards the Read in progress
	wmu sync.Mutex // guards the Write in progress
	// the Read in progress
	rp      []byte
	rn      int
	rerr    error
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool
	// the Write in progress
	wp   []byte
	wn   int
	werr error
}

// New returns the raw reader and writer of c, or nil if c is not a TCP
// connection whose descriptor can be had.
func New(c net.Conn) *Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &Conn{tc: tc, rc: rc}
	r.readFn = r.read
	r.writeFn = r.write
	return r
}

// Read reads what the socket has, waiting for it if nothing, as
// net.Conn.Read (0 and io.EOF at the peer's end of stream).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	c.rp, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(c.readFn)
	n, rerr := c.rn, c.rerr
	c.rp = nil
	c.rmu.Unlock()
	if err == nil {
		err = rerr
	}
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

func (c *Conn) read(fd uintptr) bool {
	n, err := ReadFD(int(fd), c.rp)
	if err == syscall.EAGAIN {
		return false // wait in the netpoller
	}
	c.rn, c.rerr = n, err
	return true
}

// ReadFD reads from fd once, without waiting: for a caller that is in a
// syscall.RawConn callback already. It returns syscall.EAGAIN when
// nothing is there.
func ReadFD(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			raceAcquire(uintptr(fd))
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, syscall.EAGAIN
		}
		return 0, os.NewSyscallError("read", e)
	}
}

// Write writes all of p, waiting for the socket when its buffer is full,
// as net.Conn.Write.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	c.wp, c.wn, c.werr = p, 0, nil
	err := c.rc.Write(c.writeFn)
	n, werr := c.wn, c.werr
	c.wp = nil
	c.wmu.Unlock()
	if err == nil {
		err = werr
	}
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

func (c *Conn) write(fd uintptr) bool {
	raceRelease(fd)
	for len(c.wp) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.wp[0])), uintptr(len(c.wp)))
		switch e {
		case 0:
			c.wn += int(n)
			c.wp = c.wp[n:]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.werr = os.NewSyscallError("write", e)
		return true
	}
	return true
}

// opError wraps err as net.Conn's methods do.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.tc.LocalAddr(), Addr: c.tc.RemoteAddr(), Err: err}
}

// Quiet reports whether a connection that should have nothing to say (an
// idle keep-alive connection to an upstream) is still open and silent: a
// non-blocking peek of one byte finds nothing. A close or reset by the
// peer, bytes it sent unasked, or an error mean it is not. It never
// waits: a close already received shows at once, and one still on the
// wire would not be seen by a wait of any length that is short enough to
// make on a request's path. ok is false when c is not a socket (then it
// tells nothing).
func Quiet(c net.Conn) (quiet, ok bool) {
	sc, isSock := c.(syscall.Conn)
	if !isSock {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		quiet = e == syscall.EAGAIN
		return true // done either way: never wait in the netpoller
	})
	return err == nil && quiet, true
}
