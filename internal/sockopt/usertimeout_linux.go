package sockopt

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// SetTCPUserTimeout sets TCP_USER_TIMEOUT (RFC 5482) on a TCP connection:
// data left unacknowledged for d fails the connection, instead of after the
// kernel's retransmissions (about 15 minutes). Other connections are left
// as they are.
func SetTCPUserTimeout(c net.Conn, d time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok || d <= 0 {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
	})
}
