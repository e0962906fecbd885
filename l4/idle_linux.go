package l4

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// kernelIdle reports how long the kernel has seen no data on c in either
// direction, from TCP_INFO. It is one getsockopt, called only when an idle
// timer fires, so it does not touch the splice path.
func kernelIdle(c net.Conn) (time.Duration, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || serr != nil {
		return 0, false
	}
	ms := min(info.Last_data_recv, info.Last_data_sent)
	return time.Duration(ms) * time.Millisecond, true
}
