//go:build !linux

package h1serve

import "syscall"

// parker parks idle connections on Linux only (park_linux.go); elsewhere
// an idle connection keeps its goroutine.
type parker struct{}

func (p *parker) park(*Server, *conn) bool { return false }

func (p *parker) close() {}

func (p *parker) parkedCount() int { return 0 }

func descriptor(syscall.RawConn) int32 { return -1 }
