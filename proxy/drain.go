package proxy

import (
	"net"
	"sync"
)

// longLived is an exchange that may outlive its endpoint's place in the
// table: a tunnel (WebSocket) or a streamed response (server-sent events,
// gRPC streams). When the endpoint leaves rotation it is allowed to go on
// until the backend drain deadline, then ended cleanly by stop.
type longLived struct {
	addr string
	stop func()
	conn net.Conn // the client connection of a tunnel; nil for a stream
}

// longSet tracks the long-lived exchanges. Only streams and tunnels are
// tracked, never ordinary requests, so the request path does not take mu.
type longSet struct {
	mu sync.Mutex // guards m
	m  map[*longLived]struct{}
}

// hold tracks l until the returned func is called.
func (p *Proxy) hold(l *longLived) (release func()) {
	p.long.mu.Lock()
	if p.long.m == nil {
		p.long.m = make(map[*longLived]struct{})
	}
	p.long.m[l] = struct{}{}
	p.long.mu.Unlock()
	return func() {
		p.long.mu.Lock()
		delete(p.long.m, l)
		p.long.mu.Unlock()
	}
}

// EndLongLived ends the tunnels and streams to any endpoint in gone: the
// backend drain deadline of endpoints that left rotation. It returns how many
// it ended.
func (p *Proxy) EndLongLived(gone map[string]bool) int {
	var stop []*longLived
	p.long.mu.Lock()
	for l := range p.long.m {
		if gone[l.addr] {
			stop = append(stop, l)
		}
	}
	p.long.mu.Unlock()
	for _, l := range stop {
		l.stop()
	}
	return len(stop)
}

// CloseTunnels closes every upgraded connection (WebSockets and others).
// http.Server.Shutdown does not see hijacked connections; Server.Shutdown
// calls this once the other requests in flight have finished or its ctx is
// done.
func (p *Proxy) CloseTunnels() {
	p.long.mu.Lock()
	defer p.long.mu.Unlock()
	for l := range p.long.m {
		if l.conn != nil {
			l.conn.Close()
		}
	}
}
