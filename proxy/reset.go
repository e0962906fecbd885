package proxy

import (
	"context"
	"net"
	"sync"
	"time"
)

// Streams a client resets (HTTP/2 RST_STREAM, the "rapid reset" flood of
// CVE-2023-44487) cost the edge as little as the protocol allows: a stream
// reset before its request went upstream never dials, a connection that
// resets more than resetBudget streams in resetWindow is closed, and only
// the first resetLogged reset streams of a window are access-logged (the
// rest are counted in swarmgate_http_client_resets_total and summed up in
// one log line when the connection closes).
const (
	resetWindow = 10 * time.Second
	resetBudget = 100
	resetLogged = 10
)

// connGuard is one client connection's reset accounting.
type connGuard struct {
	conn net.Conn

	mu       sync.Mutex
	window   time.Time // start of the current window
	resets   int       // in the current window
	unlogged int       // reset streams not access-logged, over the connection's life
	closed   bool      // closed for exceeding the budget
}

type connGuardKey struct{}

// withConnGuard is the http.Server's ConnContext (the connections that may
// carry HTTP/2): the connection's local port (localPortKey) and a guard,
// in one allocation (guardCtx).
func withConnGuard(ctx context.Context, c net.Conn) context.Context {
	return &guardCtx{portCtx: portCtx{Context: ctx, port: addrPort(c.LocalAddr())}, g: connGuard{conn: c}}
}

// withLocalPort is the own HTTP/1 loop's ConnContext: HTTP/1 resets no
// stream, so its connections get their local port and no guard (a
// cleartext HTTP/2 preface goes to the http.Server, whose ConnContext
// gives that connection one).
func withLocalPort(ctx context.Context, c net.Conn) context.Context {
	return &portCtx{Context: ctx, port: addrPort(c.LocalAddr())}
}

// portCtx is a connection's context holding its local port, as
// context.WithValue(ctx, localPortKey{}, port) would.
type portCtx struct {
	context.Context
	port any // a string, converted once: Value is called per request
}

func (c *portCtx) Value(key any) any {
	if _, ok := key.(localPortKey); ok {
		return c.port
	}
	return c.Context.Value(key)
}

// guardCtx is a portCtx with the connection's guard (connGuardKey): one
// allocation where two context.WithValue layers and a guard were three.
type guardCtx struct {
	portCtx
	g connGuard
}

func (c *guardCtx) Value(key any) any {
	switch key.(type) {
	case connGuardKey:
		return &c.g
	case localPortKey:
		return c.port
	}
	return c.Context.Value(key)
}

// guardOf returns the guard of the connection a request came on, nil for a
// request that did not come through a Server (tests calling ServeHTTP).
func guardOf(ctx context.Context) *connGuard {
	g, _ := ctx.Value(connGuardKey{}).(*connGuard)
	return g
}

// reset records a stream the client reset at now. It reports whether the
// stream is to be access-logged, and whether this reset exhausted the budget:
// then closing is called and the connection closed (every stream on it
// ends), in that order, so that what closing records is there when the
// client sees the close.
func (g *connGuard) reset(now time.Time, closing func()) (logIt, closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.window) > resetWindow {
		g.window, g.resets = now, 0
	}
	g.resets++
	logIt = g.resets <= resetLogged
	if !logIt {
		g.unlogged++
	}
	if g.resets > resetBudget && !g.closed {
		g.closed = true
		closing()
		g.conn.Close()
		return logIt, true
	}
	return logIt, false
}

// unloggedResets returns how many reset streams were not access-logged.
func (g *connGuard) unloggedResets() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.unlogged
}
