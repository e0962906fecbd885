package h1serve

import (
	"errors"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parker holds the idle keep-alive connections of a Server that waited
// Server.ParkIdle for their next request, without a goroutine each: a
// parked connection's socket is in an epoll set of the parker's own, one
// shot (readable, or hung up), and that set's descriptor is waited on
// through Go's netpoller by one goroutine, which starts a connection's
// goroutine again when its socket turns readable and closes those whose
// idle timeout passed. A parked connection costs its conn and socket
// structures, no goroutine stack (NGINX holds an idle keep-alive
// connection so, in its event loop).
//
// Only plain TCP connections park: a TLS connection may hold decrypted
// bytes of the next request that its socket no longer shows, and a PROXY
// header's reader may hold bytes too.
type parker struct {
	mu      sync.Mutex
	started bool
	failed  bool // the epoll set could not be made: nothing parks
	closed  bool
	epfd    int
	file    *os.File        // epfd, waited on through Go's netpoller
	raw     syscall.RawConn // file's
	seq     uint32
	parked  map[uint64]*conn // by parkKey
	swept   time.Time        // when the idle timeouts were last checked
	// parks counts the connections parked since the collection gcSeen
	// counted; nudged is when the parker last asked for one.
	parks  int
	gcSeen uint64
	nudged time.Time
	cycles []metrics.Sample
}

// sweepEvery is how often the parked connections' idle timeouts are
// checked: a parked connection closes up to this much after its timeout.
const sweepEvery = time.Second

// A goroutine that exits keeps its stack until the next garbage
// collection, and an edge that only holds idle connections allocates
// little, so that collection may be minutes away (the runtime forces one
// every 2 minutes); even then the freed stacks stay in the process (the
// runtime returns free memory to the system slowly, and keeps what it
// expects to reuse). When gcParks connections parked and no collection ran
// since, the parker runs one and returns the free memory to the system
// (debug.FreeOSMemory), at most every gcNudgeEvery: 10,000 parked
// connections give back ~40 MiB of stacks for a few ms of CPU.
const (
	gcParks      = 1024
	gcNudgeEvery = 10 * time.Second
)

// parkKey is what a parked connection's epoll event carries: its
// descriptor and the parking's sequence number, so that an event of a
// descriptor closed and reused meanwhile finds no connection.
func parkKey(fd int32, seq uint32) uint64 { return uint64(uint32(fd))<<32 | uint64(seq) }

// start makes the epoll set and starts its goroutine. p.mu is held.
func (p *parker) start(s *Server) bool {
	if p.started {
		return !p.failed
	}
	p.started = true
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err == nil {
		err = unix.SetNonblock(fd, true)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		p.failed = true
		s.logf("http: idle connections are not parked: epoll: %v", err)
		return false
	}
	p.epfd = fd
	p.file = os.NewFile(uintptr(fd), "h1serve-epoll")
	if p.raw, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		p.failed = true
		s.logf("http: idle connections are not parked: %v", err)
		return false
	}
	p.parked = make(map[uint64]*conn)
	p.swept = time.Now()
	p.gcSeen = p.gcCycles()
	go p.loop(s)
	return true
}

// park puts c, idle, in the epoll set. Once it reports true, c belongs to
// the parker: its goroutine must return without touching it.
func (p *parker) park(s *Server, c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.start(s) {
		return false
	}
	p.seq++
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: c.sysfd, Pad: int32(p.seq)}
	op := unix.EPOLL_CTL_MOD
	if !c.inEpoll {
		op = unix.EPOLL_CTL_ADD
	}
	err := unix.EpollCtl(p.epfd, op, int(c.sysfd), &ev)
	switch {
	case err == unix.ENOENT && op == unix.EPOLL_CTL_MOD:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(c.sysfd), &ev)
	case err == unix.EEXIST && op == unix.EPOLL_CTL_ADD:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(c.sysfd), &ev)
	}
	if err != nil {
		return false
	}
	c.inEpoll = true
	p.parked[parkKey(c.sysfd, p.seq)] = c
	p.parks++
	if len(p.parked) == 1 {
		// The loop may be waiting without a deadline: wake it for the sweep.
		p.file.SetReadDeadline(time.Now().Add(sweepEvery))
	}
	return true
}

// loop waits for parked connections' sockets and resumes their
// connections, and closes the ones idle past their timeout, until close.
func (p *parker) loop(s *Server) {
	events := make([]unix.EpollEvent, 128)
	wake := make([]*conn, 0, len(events))
	for {
		var n int
		err := p.raw.Read(func(fd uintptr) bool {
			var werr error
			n, werr = unix.EpollWait(int(fd), events, 0)
			if werr != nil {
				n = 0
			}
			return n > 0
		})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // closed
		}
		wake = wake[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			k := parkKey(ev.Fd, uint32(ev.Pad))
			if c := p.parked[k]; c != nil {
				delete(p.parked, k)
				wake = append(wake, c)
			}
		}
		var expired []*conn
		now := time.Now()
		if now.Sub(p.swept) >= sweepEvery {
			p.swept = now
			for k, c := range p.parked {
				if now.After(c.idleUntil) {
					delete(p.parked, k)
					expired = append(expired, c)
				}
			}
			p.nudge(now)
		}
		next := time.Time{} // nothing parked: no sweep due
		if len(p.parked) > 0 {
			next = p.swept.Add(sweepEvery)
		}
		p.file.SetReadDeadline(next)
		p.mu.Unlock()
		for _, c := range wake {
			go c.resume()
		}
		for _, c := range expired {
			c.expire()
		}
	}
}

// nudge starts a garbage collection if gcParks connections parked and no
// collection ran since (see gcParks). It runs at each sweep; p.mu is held.
func (p *parker) nudge(now time.Time) {
	if n := p.gcCycles(); n != p.gcSeen {
		p.gcSeen, p.parks = n, 0 // a collection ran: count from it
		return
	}
	if p.parks < gcParks || now.Sub(p.nudged) < gcNudgeEvery {
		return
	}
	p.nudged, p.parks = now, 0
	go debug.FreeOSMemory()
}

// gcCycles is how many garbage collections the runtime completed.
func (p *parker) gcCycles() uint64 {
	if p.cycles == nil {
		p.cycles = []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	}
	metrics.Read(p.cycles)
	return p.cycles[0].Value.Uint64()
}

// close closes every parked connection and ends the loop; nothing parks
// after it.
func (p *parker) close() {
	p.mu.Lock()
	p.closed = true
	var all []*conn
	for k, c := range p.parked {
		delete(p.parked, k)
		all = append(all, c)
	}
	if p.file != nil && !p.failed {
		p.file.Close()
	}
	p.mu.Unlock()
	for _, c := range all {
		c.expire()
	}
}

// parkedCount is how many connections are parked.
func (p *parker) parkedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// descriptor returns the socket descriptor of a plain TCP connection, for
// parking, or -1.
func descriptor(raw syscall.RawConn) int32 {
	fd := int32(-1)
	if raw != nil {
		raw.Control(func(d uintptr) { fd = int32(d) })
	}
	return fd
}
