package edge

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

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
