package control

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRaceDialTakesTheAddressThatAnswers resolves a name to a dead replica
// (a connect that hangs) and a live one: the connection comes from the
// live one at once, not after the dead one's timeout.
func TestRaceDialTakesTheAddressThatAnswers(t *testing.T) {
	ln, port := listenLocal(t)
	lookup := func(context.Context, string) ([]string, error) { return []string{"192.0.2.1", "127.0.0.1"}, nil }
	hung := make(chan struct{})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == net.JoinHostPort("192.0.2.1", port) { // the dead replica: no answer until given up
			<-ctx.Done()
			close(hung)
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	start := time.Now()
	c, err := raceDial(context.Background(), "tcp", net.JoinHostPort("control", port), lookup, dial, time.Hour, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != ln.Addr().String() {
		t.Errorf("connected to %s, want %s", c.RemoteAddr(), ln.Addr())
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("connect took %v: it waited for the dead address", d)
	}
	select {
	case <-hung: // the dial to the dead one was given up
	case <-time.After(2 * time.Second):
		t.Error("the dial to the dead address goes on after a connection was made")
	}

	// Every address refused: the errors of all.
	refuse := func(_ context.Context, _, addr string) (net.Conn, error) { return nil, errors.New("refused " + addr) }
	if _, err := raceDial(context.Background(), "tcp", "control:7070", lookup, refuse, time.Hour, time.Second); err == nil ||
		!strings.Contains(err.Error(), "refused 192.0.2.1:7070") || !strings.Contains(err.Error(), "refused 127.0.0.1:7070") {
		t.Errorf("all refused: %v", err)
	}
}

// TestRaceDialSendsAgainInWaves: a replica whose first SYN was lost (a
// partition that heals a moment later) is connected by the next wave, not
// after the connect timeout.
func TestRaceDialSendsAgainInWaves(t *testing.T) {
	ln, _ := listenLocal(t)
	var mu sync.Mutex
	attempts := 0
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		attempts++
		first := attempts == 1
		mu.Unlock()
		if first { // lost: no answer until given up
			<-ctx.Done()
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	start := time.Now()
	c, err := raceDial(context.Background(), "tcp", ln.Addr().String(), nil, dial, 50*time.Millisecond, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if d := time.Since(start); d < 40*time.Millisecond || d > time.Second {
		t.Errorf("connected after %v; want the second wave's, about 50ms", d)
	}

	// No answer at all: given up at the timeout, every wave's dial ended.
	hang := func(ctx context.Context, _, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }
	start = time.Now()
	if _, err := raceDial(context.Background(), "tcp", "127.0.0.1:9", nil, hang, 50*time.Millisecond, 300*time.Millisecond); err == nil {
		t.Fatal("a dial nobody answers succeeded")
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %v; want the 300ms timeout", d)
	}
}

// TestRaceDialResolvesAgainInWaves: the name resolves to a dead replica
// only, until the replica that took its place reaches DNS: the next wave
// dials the new address, without waiting for the dead one's timeout.
func TestRaceDialResolvesAgainInWaves(t *testing.T) {
	ln, port := listenLocal(t)
	var mu sync.Mutex
	lookups := 0
	lookup := func(context.Context, string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups++
		switch {
		case lookups <= 2:
			return []string{"192.0.2.1"}, nil // only the dead replica
		case lookups == 3:
			return nil, errors.New("server misbehaving") // a failed lookup keeps the last answer
		default:
			return []string{"192.0.2.1", "127.0.0.1"}, nil
		}
	}
	dial := deadAt("192.0.2.1")
	start := time.Now()
	c, err := raceDial(context.Background(), "tcp", net.JoinHostPort("control", port), lookup, dial, 50*time.Millisecond, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != ln.Addr().String() {
		t.Errorf("connected to %s, want %s", c.RemoteAddr(), ln.Addr())
	}
	// The fourth lookup (the third wave, 150 ms in) finds the new replica.
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("connected after %v; want the third wave's, about 150ms", d)
	}
}

// TestRaceDialWaitsOutRefusalsAndLookupFailures: a name that does not
// resolve yet is looked up again each wave; once it resolves and every
// address refuses, the dial returns at once, so that a client with several
// control planes tries the next without waiting out the timeout.
func TestRaceDialWaitsOutRefusalsAndLookupFailures(t *testing.T) {
	_, port := listenLocal(t)
	var mu sync.Mutex
	lookups, dials := 0, 0
	lookup := func(context.Context, string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if lookups++; lookups == 1 {
			return nil, errors.New("no such host") // not in DNS yet
		}
		return []string{"127.0.0.1"}, nil
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials++
		refuse := dials <= 2
		mu.Unlock()
		if refuse { // the process is not listening yet
			return nil, errors.New("connection refused")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	start := time.Now()
	// Wave 1: no address; wave 2: refused, and with every address of the
	// name refused the dial returns at once for the caller's next address.
	if _, err := raceDial(context.Background(), "tcp", net.JoinHostPort("control", port), lookup, dial, 50*time.Millisecond, 5*time.Second); err == nil ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("refused: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v; want the second wave's, about 50ms", d)
	}

	// Never resolves: given up at the timeout, with the lookup's error.
	fail := func(context.Context, string) ([]string, error) { return nil, errors.New("no such host") }
	if _, err := raceDial(context.Background(), "tcp", "control:7070", fail, dial, 50*time.Millisecond, 200*time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "no such host") || strings.Count(err.Error(), "no such host") != 1 {
		t.Errorf("never resolved: %v; want the lookup's error, once", err)
	}
}

// listenLocal listens on a loopback port for the test's length.
func listenLocal(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

// deadAt is a dialer to which ip is a dead replica (no answer until the
// dial is given up) and every other address is dialled for real.
func deadAt(ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, ip+":") {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}
