//go:build !linux

package l4

import (
	"net"
	"time"
)

// kernelIdle is only implemented on Linux; elsewhere idleWatch counts reads.
func kernelIdle(net.Conn) (time.Duration, bool) { return 0, false }
