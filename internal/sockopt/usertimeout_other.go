//go:build !linux

package sockopt

import (
	"net"
	"time"
)

// SetTCPUserTimeout does nothing where TCP_USER_TIMEOUT does not exist: a
// vanished peer is then noticed by the caller's own timeouts.
func SetTCPUserTimeout(net.Conn, time.Duration) {}
