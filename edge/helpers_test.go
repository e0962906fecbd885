package edge

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/l4"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testEdge is an Edge whose proxy serves on a real loopback listener.
type testEdge struct {
	e      *Edge
	p      *proxy.Proxy
	l4     *l4.Engine
	url    string
	addr   string
	client *http.Client
}

// startEdge starts an edge serving cfg, with the given backend drain.
func startEdge(t *testing.T, cfg route.Config, drain time.Duration) *testEdge {
	t.Helper()
	log, reg := zaptest.NewLogger(t), prometheus.NewRegistry()
	pool := balancer.NewPool(balancer.PoolOptions{})
	engine := l4.New(l4.Options{Logger: log, Registerer: reg, DialTimeout: time.Second})
	var e *Edge
	p := proxy.New(proxy.Options{Logger: log, Registerer: reg, DialTimeout: time.Second, Pool: pool,
		TLSName: func(h string) string { return e.TLSName(h) }})
	e = New(Core{Proxy: p, Pool: pool, L4: engine, Logger: log, BackendDrain: drain})
	e.Apply(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.NewServer("http", proxy.ServerOptions{})
	go srv.Serve(ln)
	te := &testEdge{e: e, p: p, l4: engine, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close()
		srv.Shutdown(ctx)
		engine.Close()
		engine.Drain(ctx)
		p.Close()
		te.client.CloseIdleConnections()
	})
	return te
}

func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(name))
	}))
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func testRoute(service string, hosts []string, path string, eps ...string) route.Route {
	return route.Route{
		Service: service, Hosts: hosts, Path: path, Port: 80, Weight: route.DefaultWeight,
		Backend: route.BackendTask, Balancer: "round-robin", Timeout: 5 * time.Second, Endpoints: eps,
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// wsEcho is a WebSocket backend that echoes every message.
func wsEcho(t *testing.T, prefix string) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte(prefix), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(b.Close)
	return b
}
