//go:build !linux

package proxy

import (
	"net"
	"time"
)

// setTCPUserTimeout does nothing where TCP_USER_TIMEOUT does not exist:
// a vanished upstream is then noticed at the route's response timeout.
func setTCPUserTimeout(*net.TCPConn, time.Duration) {}
