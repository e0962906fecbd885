//go:build race

package rawio

import "syscall"

// Under the race detector, the standard library's reads and writes tell it
// that what was written before a write happens before what is read after
// the read that got it (internal/poll and syscall annotate their calls).
// Raw calls would lose that edge: a zero-length read(2) and write(2)
// through the syscall package restore it. Builds without the detector
// have none of this (norace.go).

func raceAcquire(fd uintptr) { syscall.Read(int(fd), nil) }

func raceRelease(fd uintptr) { syscall.Write(int(fd), nil) }
