package proxy

import (
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
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

// drainLater ends, once the backend drain deadline has passed, the
// long-lived exchanges with endpoints that are still out of rotation then.
func (p *Proxy) drainLater(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	time.AfterFunc(p.backendDrain, func() {
		in := p.table.Load().endpointsInUse()
		gone := make(map[string]bool)
		for _, a := range addrs {
			if !in[a] {
				gone[a] = true
			}
		}
		var stop []*longLived
		p.long.mu.Lock()
		for l := range p.long.m {
			if gone[l.addr] {
				stop = append(stop, l)
			}
		}
		p.long.mu.Unlock()
		for _, l := range stop {
			p.log.Debug("backend drain deadline passed; ending a long-lived exchange")
			l.stop()
		}
		if p.l4 != nil && len(gone) > 0 {
			list := make([]string, 0, len(gone))
			for a := range gone {
				list = append(list, a)
			}
			if n := p.l4.EndEndpoints(list); n > 0 {
				p.log.Info("backend drain deadline passed; TCP connections ended", zap.Int("connections", n))
			}
		}
	})
}

// CloseTunnels closes every upgraded connection (WebSockets and others).
// http.Server.Shutdown does not see hijacked connections; Server.Shutdown
// calls this when the drain deadline has passed.
func (p *Proxy) CloseTunnels() {
	p.long.mu.Lock()
	defer p.long.mu.Unlock()
	for l := range p.long.m {
		if l.conn != nil {
			l.conn.Close()
		}
	}
}
