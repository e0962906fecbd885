package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// stallDials makes the dialer's connects to the given addresses wait until
// the test ends (a task whose node is gone: SYNs go unanswered), and counts
// them.
func stallDials(t *testing.T, d *net.Dialer, addrs ...string) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	stalled := map[string]bool{}
	for _, a := range addrs {
		stalled[a] = true
	}
	d.Control = func(_, address string, _ syscall.RawConn) error {
		if stalled[address] {
			n.Add(1)
			<-release
		}
		return nil
	}
	return &n
}

func TestH1SlowConnectFailsOverAndPoolsTheLateConnection(t *testing.T) {
	s, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	tr := newH1(t)
	tr.connectFloor = 20 * time.Millisecond
	release := make(chan struct{})
	var stalls atomic.Int64
	tr.dialer.Control = func(_, _ string, _ syscall.RawConn) error {
		if stalls.Add(1) == 1 {
			<-release // only the first connect is slow
		}
		return nil
	}
	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	took := time.Since(start)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, errConnectSlow) {
		t.Fatalf("a stalled connect: got %v; want a dial error wrapping errConnectSlow", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("the slow-connect error is not a timeout: %v", err)
	}
	if took > 500*time.Millisecond {
		t.Errorf("gave up on the connect after %s; want about the 20ms floor", took)
	}
	// The first dial goes on; once it completes its connection is pooled
	// and serves the next request without a new connect.
	close(release)
	testkit.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if len(tr.idle[s.Listener.Addr().String()]) != 1 {
			return errors.New("the late connection is not in the pool yet")
		}
		return nil
	})
	if _, got := h1Get(t, tr, "GET", s.URL+"/", nil); got != "ok" {
		t.Fatalf("got %q", got)
	}
	if n := stalls.Load(); n != 1 {
		t.Errorf("%d connects; want 1 (the late connection reused)", n)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the server accepted %d connections; want 1", n)
	}
}

func TestH1ConnectWaitAdapts(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	for _, c := range []struct {
		name          string
		floor, dial   time.Duration
		addr, overall time.Duration // connect EWMAs; 0: none measured
		want          time.Duration
	}{
		{"nothing measured: the floor", 0, 5 * time.Second, 0, 0, defaultConnectFloor},
		{"overlay connects: the floor", 0, 5 * time.Second, ms(0.3), ms(0.2), defaultConnectFloor},
		{"the address's own latency", 0, 5 * time.Second, ms(40), ms(1), 8 * ms(40)},
		{"the transport's latency for a new address", 0, 5 * time.Second, 0, ms(30), 8 * ms(30)},
		{"never past the dial timeout", 0, time.Second, ms(400), 0, time.Second},
		{"a floor of its own", 20 * time.Millisecond, 5 * time.Second, ms(1), 0, 20 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := &h1Transport{dialer: &net.Dialer{Timeout: c.dial}, connectFloor: c.floor}
			tr.connectEWMA.Store(int64(c.overall))
			ds := &dialState{}
			ds.ewma.Store(int64(c.addr))
			if got := tr.connectWait(ds); got != c.want {
				t.Errorf("connectWait = %s; want %s", got, c.want)
			}
		})
	}
}

func TestH1ConnectLatencyEstimate(t *testing.T) {
	tr := &h1Transport{dialer: &net.Dialer{}}
	ds := &dialState{}
	tr.observeConnect(ds, time.Millisecond)
	if got := time.Duration(ds.ewma.Load()); got != time.Millisecond {
		t.Fatalf("first sample: %s", got)
	}
	tr.observeConnect(ds, 9*time.Millisecond) // a slow connect: half way up at once
	if got := time.Duration(ds.ewma.Load()); got != 5*time.Millisecond {
		t.Fatalf("after a slow sample: %s; want 5ms", got)
	}
	tr.observeConnect(ds, time.Millisecond) // a fast one: an eighth of the way down
	if got := time.Duration(ds.ewma.Load()); got != 4500*time.Microsecond {
		t.Fatalf("after a fast sample: %s; want 4.5ms", got)
	}
	if tr.connectEWMA.Load() != ds.ewma.Load() {
		t.Errorf("the transport's estimate %d differs from its only address's %d", tr.connectEWMA.Load(), ds.ewma.Load())
	}
}

func TestH1FailedConnectDropsIdleConnections(t *testing.T) {
	s, _ := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	tr := newH1(t)
	h1Get(t, tr, "GET", s.URL+"/", nil)
	addr := s.Listener.Addr().String()
	tr.mu.Lock()
	idle := len(tr.idle[addr])
	tr.mu.Unlock()
	if idle != 1 {
		t.Fatalf("%d idle connections; want 1", idle)
	}
	tr.connectFloor = 10 * time.Millisecond
	stallDials(t, tr.dialer, addr)
	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	if _, err := tr.conn(req.Context(), addr, true); err == nil {
		t.Fatal("a stalled connect succeeded")
	}
	tr.mu.Lock()
	idle = len(tr.idle[addr])
	tr.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d idle connections after a failed connect; want 0 (the task does not answer)", idle)
	}
}

func TestH1SetsUserTimeout(t *testing.T) {
	s, _ := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	for _, c := range []struct {
		set  time.Duration
		want int // milliseconds; 0 is the kernel's default
	}{{0, int(defaultUserTimeout / time.Millisecond)}, {300 * time.Millisecond, 300}, {-1, 0}} {
		tr := newH1(t)
		tr.userTimeout = c.set
		h1Get(t, tr, "GET", s.URL+"/", nil)
		pc := tr.takeIdle(s.Listener.Addr().String(), time.Time{})
		if pc == nil {
			t.Fatal("no pooled connection")
		}
		rc, err := pc.c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var gerr error
		rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
		pc.c.Close()
		if gerr != nil || got != c.want {
			t.Errorf("userTimeout %s: TCP_USER_TIMEOUT = %d (%v); want %d", c.set, got, gerr, c.want)
		}
	}
}

// TestProxyFailsOverSlowConnect is the edge's view: one of a route's two
// tasks stops answering connects (its node is gone, discovery does not know
// yet). Every request is answered by the other, quickly, and the stalled
// task leaves rotation at its first failed connect, on every route that
// names it.
func TestProxyFailsOverSlowConnect(t *testing.T) {
	gone, alive := testkit.Backend(t, "gone"), testkit.Backend(t, "alive")
	r1 := testkit.Route("web", []string{"web.test"}, "/", testkit.Addr(gone), testkit.Addr(alive))
	r2 := testkit.Route("api", []string{"api.test"}, "/", testkit.Addr(gone), testkit.Addr(alive))
	e := startEdge(t, route.Config{Routes: []route.Route{r1, r2}})
	stalls := stallDials(t, e.p.tr.plain.dialer, testkit.Addr(gone))
	for i := range 40 {
		host := []string{"web.test", "api.test"}[i%2]
		start := time.Now()
		resp := testkit.Request(t, e.client, "GET", e.url+"/", host, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d to %s: %d %s", i, host, resp.StatusCode, body)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("request %d took %s; want well under the 1s dial timeout", i, took)
		}
	}
	// Round robin would send every other request to the stalled task; it
	// is tried once, then left out for its ejection (1 s) on both routes.
	if n := stalls.Load(); n != 1 {
		t.Errorf("%d connects to the stalled task; want 1 (it leaves rotation on every route at its first)", n)
	}
}
