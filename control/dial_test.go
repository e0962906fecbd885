package control

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRaceDialTakesTheAddressThatAnswers resolves a name to a dead replica
// (a connect that hangs) and a live one: the connection comes from the
// live one at once, not after the dead one's timeout.
func TestRaceDialTakesTheAddressThatAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
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
	c, err := raceDial(context.Background(), "tcp", net.JoinHostPort("control", port), lookup, dial)
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
	if _, err := raceDial(context.Background(), "tcp", "control:7070", lookup, refuse); err == nil ||
		!strings.Contains(err.Error(), "refused 192.0.2.1:7070") || !strings.Contains(err.Error(), "refused 127.0.0.1:7070") {
		t.Errorf("all refused: %v", err)
	}
}
