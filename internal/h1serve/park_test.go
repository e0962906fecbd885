//go:build linux

package h1serve

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get sends a keep-alive GET of path on c and returns the answer's body.
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) string {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
	return body
}

func TestParkedConnectionsServeAgain(t *testing.T) {
	s := &Server{Handler: echo, ParkIdle: 20 * time.Millisecond}
	addr := serve(t, s)
	const n = 50
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		readers[i] = bufio.NewReader(conns[i])
		if got := get(t, conns[i], readers[i], "/first"); got != "GET /first " {
			t.Fatalf("first answer %q", got)
		}
	}
	waitFor(t, "every connection parked", func() bool { return s.Parked() == n })
	if s.Open() != n {
		t.Fatalf("Open %d, want %d", s.Open(), n)
	}
	// Parked twice over: each connection is woken, served, parked again.
	for round := range 2 {
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := fmt.Sprintf("/r%d/c%d", round, i)
				if got := get(t, conns[i], readers[i], path); got != "GET "+path+" " {
					t.Errorf("answer %q", got)
				}
			}()
		}
		wg.Wait()
		waitFor(t, "every connection parked again", func() bool { return s.Parked() == n })
	}
}

func TestParkedConnectionClientCloses(t *testing.T) {
	s := &Server{Handler: echo, ParkIdle: 10 * time.Millisecond}
	addr := serve(t, s)
	c := dial(t, addr)
	get(t, c, bufio.NewReader(c), "/")
	waitFor(t, "parked", func() bool { return s.Parked() == 1 })
	c.Close()
	waitFor(t, "closed", func() bool { return s.Open() == 0 })
	if s.Parked() != 0 {
		t.Fatalf("%d still parked", s.Parked())
	}
}

func TestParkedConnectionIdleTimeout(t *testing.T) {
	var mu sync.Mutex
	var states []http.ConnState
	s := &Server{Handler: echo, ParkIdle: 10 * time.Millisecond, IdleTimeout: 300 * time.Millisecond,
		ConnState: func(_ net.Conn, st http.ConnState) {
			mu.Lock()
			states = append(states, st)
			mu.Unlock()
		}}
	addr := serve(t, s)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	get(t, c, br, "/")
	start := time.Now()
	waitFor(t, "parked", func() bool { return s.Parked() == 1 })
	// The server closes it after IdleTimeout (within a sweep).
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("read a byte from an idle connection")
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 300*time.Millisecond+2*sweepEvery {
		t.Fatalf("closed after %v, want about 300ms (+ up to a sweep)", took)
	}
	waitFor(t, "untracked", func() bool { return s.Open() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if last := states[len(states)-1]; last != http.StateClosed {
		t.Fatalf("states %v, want StateClosed last", states)
	}
}

func TestShutdownClosesParked(t *testing.T) {
	s := &Server{Handler: echo, ParkIdle: 10 * time.Millisecond}
	addr := serve(t, s)
	var conns []net.Conn
	for range 5 {
		c := dial(t, addr)
		get(t, c, bufio.NewReader(c), "/")
		conns = append(conns, c)
	}
	waitFor(t, "parked", func() bool { return s.Parked() == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Shutdown took %v with only parked connections", took)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a parked connection is still open after Shutdown")
		}
	}
}

func TestParkIdleNegativeNeverParks(t *testing.T) {
	s := &Server{Handler: echo, ParkIdle: -1}
	addr := serve(t, s)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	get(t, c, br, "/")
	time.Sleep(50 * time.Millisecond)
	if s.Parked() != 0 {
		t.Fatalf("%d parked with ParkIdle < 0", s.Parked())
	}
	get(t, c, br, "/again")
}

// A request that was in flight as its connection parked (sent right at the
// park deadline) is not lost: the socket's readiness wakes it at once.
func TestParkRaceWithRequest(t *testing.T) {
	s := &Server{Handler: echo, ParkIdle: 2 * time.Millisecond}
	addr := serve(t, s)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for i := range 200 {
		get(t, c, br, fmt.Sprintf("/%d", i))
		time.Sleep(time.Duration(i%5) * time.Millisecond)
	}
}
