package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestRapidResetIsBounded floods one cleartext HTTP/2 connection with
// HEADERS + RST_STREAM pairs (CVE-2023-44487): the edge dials the backend
// for next to none of them, closes the connection once it exceeds the reset
// budget, writes a bounded number of access-log lines, and keeps serving
// other clients.
func TestRapidResetIsBounded(t *testing.T) {
	var conns, requests atomic.Int64
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		time.Sleep(5 * time.Millisecond) // a backend that takes a moment
		w.Write([]byte("ok"))
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	b.Start()
	defer b.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	e := startEdgeWith(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}},
		Options{DialTimeout: time.Second, AccessLog: zap.New(core)})

	c, err := net.DialTimeout("tcp", e.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "app.example.org"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	// Read what the edge sends (SETTINGS, responses, GOAWAY) until it closes.
	closed := make(chan error, 1)
	var calm atomic.Bool // a GOAWAY ENHANCE_YOUR_CALM came
	go func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				closed <- err
				return
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok && ga.ErrCode == http2.ErrCodeEnhanceYourCalm {
				calm.Store(true)
			}
		}
	}()
	const pairs = 2000
	sent := 0
	for id := uint32(1); sent < pairs; id += 2 {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			break // the edge closed the connection
		}
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	select {
	case err := <-closed:
		if errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("connection closed mid-frame: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the edge kept a connection that reset thousands of streams")
	}
	t.Logf("%d HEADERS+RST_STREAM pairs sent before the edge closed the connection; backend: %d connections, %d requests",
		sent, conns.Load(), requests.Load())
	// The edge's budget closes the connection; on a machine so starved
	// that the handlers of reset streams cannot start as fast as they
	// come, net/http's own bound (4x the concurrent streams waiting to
	// start) may close it first, with a GOAWAY ENHANCE_YOUR_CALM: a close
	// by the edge all the same, before the budget was spent.
	guardClosed := testkit.MetricValue(t, e.p.metrics.resetCloses)
	switch {
	case guardClosed == 1:
	case guardClosed == 0 && calm.Load():
		t.Logf("closed by net/http's bound on streams waiting to start (ENHANCE_YOUR_CALM), before the reset budget")
	default:
		t.Errorf("reset flood closes = %v (ENHANCE_YOUR_CALM %v), want 1", guardClosed, calm.Load())
	}
	// A stream reset before its request is written dials nothing, and a
	// dial the client gave up on serves the next request; what is left are
	// requests cancelled mid-exchange, whose HTTP/1.1 connection cannot be
	// reused: 1.5-2.5 per 100 reset streams here (NGINX: 3.2; this edge
	// before the bound: 22). The bound leaves room for a starved machine.
	if n := conns.Load(); n > pairs/20 {
		t.Errorf("the flood opened %d backend connections for %d reset streams; want at most %d", n, pairs, pairs/20)
	}
	// Access-log lines for reset streams are bounded per connection.
	if guardClosed == 1 {
		testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
			if logs.FilterMessage("reset streams not logged one by one").Len() != 1 {
				return errors.New("no summary line for the reset streams")
			}
			return nil
		})
	}
	if n := logs.FilterMessage("request").FilterField(zap.Int("status", 499)).Len(); n > resetLogged {
		t.Errorf("%d access-log lines for reset streams, want at most %d", n, resetLogged)
	}
	// Other clients are served.
	if resp, body := e.do(t, "GET", "app.example.org", "/", nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the flood: %d %q", resp.StatusCode, body)
	}
}
