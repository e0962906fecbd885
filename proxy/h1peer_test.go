package proxy

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
)

// TestClosedByPeer: the ends of a connection an upstream closed while idle
// are retried on a new connection to the same task; a timeout (data left
// unacknowledged: a partition, a lost node) is not, so that the request
// goes to another endpoint.
func TestClosedByPeer(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{&os.SyscallError{Syscall: "write", Err: syscall.EPIPE}, true},
		{fmt.Errorf("read: %w", syscall.ETIMEDOUT), false},
		{os.ErrDeadlineExceeded, false},
		{syscall.EHOSTUNREACH, false},
	} {
		if got := closedByPeer(tt.err); got != tt.want {
			t.Errorf("closedByPeer(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
