package edge

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestTunnelEndsCleanlyAtBackendDrainDeadline: a WebSocket to a task that
// left rotation keeps working until the deadline, then the client sees a
// clean end of stream, not a reset.
func TestTunnelEndsCleanlyAtBackendDrainDeadline(t *testing.T) {
	old := testkit.WebSocketEcho(t, "")
	next := testkit.Backend(t, "next")
	const drain = 300 * time.Millisecond
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("ws", []string{"ws.example.org"}, "/", testkit.Addr(old))}}, drain)
	d := websocket.Dialer{NetDial: func(_, _ string) (net.Conn, error) { return net.Dial("tcp", e.addr) }}
	c, _, err := d.Dial("ws://ws.example.org/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func() error {
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			return err
		}
		_, _, err := c.ReadMessage()
		return err
	}
	if err := echo(); err != nil {
		t.Fatal(err)
	}
	// The task leaves rotation: the tunnel goes on until the deadline.
	removed := time.Now()
	e.e.Apply(route.Config{Routes: []route.Route{testkit.Route("ws", []string{"ws.example.org"}, "/", testkit.Addr(next))}})
	if err := echo(); err != nil {
		t.Fatalf("tunnel closed before the drain deadline: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	waited := time.Since(removed)
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("tunnel was reset: %v", err)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("tunnel still open %s after removal (drain %s)", waited, drain)
	case !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) && !websocket.IsCloseError(err, websocket.CloseAbnormalClosure):
		t.Fatalf("tunnel ended with %v, want a clean end of stream", err)
	}
	if waited < drain {
		t.Fatalf("tunnel ended after %s, before the %s drain deadline", waited, drain)
	}
}

// TestStreamEndsCleanlyAtBackendDrainDeadline: a server-sent event stream from
// a task that left rotation is ended as a complete response at the deadline.
func TestStreamEndsCleanlyAtBackendDrainDeadline(t *testing.T) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	b := testkit.EventStream(t, 0, tick.C)
	e := startEdge(t, route.Config{Routes: []route.Route{testkit.Route("sse", []string{"sse.example.org"}, "/", testkit.Addr(b))}}, 200*time.Millisecond)
	resp := testkit.Request(t, e.client, "GET", e.url+"/", "sse.example.org", nil)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	e.e.Apply(route.Config{Routes: []route.Route{testkit.Route("sse", []string{"sse.example.org"}, "/", testkit.UnusedAddr(t))}})
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, rd); done <- err }()
	if err := testkit.Receive(t, done, 5*time.Second, "end of the stream at the drain deadline"); err != nil {
		t.Fatalf("stream ended with %v, want a complete response", err)
	}
}
