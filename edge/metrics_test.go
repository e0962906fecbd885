package edge

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

func TestChangeClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	steps := []struct {
		changed time.Time
		want    time.Duration
		ok      bool
	}{
		{time.Time{}, 0, false}, // a routes file: no stamp
		{t0, 0, false},          // the initial state
		{t0, 0, false},          // a resync: nothing new
		{t0.Add(time.Second), 50 * time.Millisecond, true},
		{t0.Add(time.Second), 0, false},            // another source's update, same latest stamp
		{t0.Add(500 * time.Millisecond), 0, false}, // older than the latest
		{t0.Add(3 * time.Second), 50 * time.Millisecond, true},
	}
	var c changeClock
	for i, s := range steps {
		now := s.changed.Add(50 * time.Millisecond)
		if s.changed.IsZero() {
			now = t0
		}
		got, ok := c.observe(s.changed, now)
		if got != s.want || ok != s.ok {
			t.Errorf("step %d: observe(%v) = %v, %v; want %v, %v", i, s.changed, got, ok, s.want, s.ok)
		}
	}
}

// histogramCount returns the sample count of an unlabelled histogram.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0, 0
}

func TestApplyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	clock := testkit.NewClock()
	pool := balancer.NewPool(balancer.PoolOptions{})
	p := proxy.New(proxy.Options{Pool: pool, Registerer: reg})
	defer p.Close()
	e := New(Core{Proxy: p, Pool: pool, Logger: zaptest.NewLogger(t), Registerer: reg, Now: clock.Now})
	defer e.Close()

	web := testkit.Route("web", []string{"web.test"}, "/", "127.0.0.1:1")
	first := clock.Now().Add(-time.Hour) // the state found at start
	e.Apply(route.Config{Routes: []route.Route{web}, Changed: first})
	changed := clock.Now()
	clock.Advance(200 * time.Millisecond)
	e.Apply(route.Config{Routes: []route.Route{web, testkit.Route("api", []string{"api.test"}, "/", "127.0.0.1:2")}, Changed: changed})

	if n, _ := histogramCount(t, reg, "swarmgate_table_build_seconds"); n != 2 {
		t.Errorf("table builds observed: %d, want the 2 Applied", n)
	}
	n, sum := histogramCount(t, reg, "swarmgate_change_to_table_seconds")
	if n != 1 || sum < 0.199 || sum > 0.201 {
		t.Errorf("change to table: %d samples summing %vs, want one of 0.2s (the initial state is not a change)", n, sum)
	}
}

func TestTLSHandshakeMetrics(t *testing.T) {
	ca := testkit.NewCA(t, "test CA")
	leaf := ca.Issue(t, "web.test")
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{leaf.TLSCertificate()},
		NextProtos:   []string{"h2", "http/1.1"},
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	}
	reg := prometheus.NewRegistry()
	m := newTLSMetrics(reg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	m.watch(srv)
	go func() { done <- srv.Serve(m.listener(ln, cfg)) }()
	defer func() {
		srv.Close()
		<-done
	}()
	addr := ln.Addr().String()
	roots := ca.Pool

	get := func(c *tls.Config) error {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if c.MaxVersion == 0 && resp.ProtoMajor != 2 {
				t.Errorf("TLS 1.3 request over %s, want HTTP/2", resp.Proto)
			}
		}
		return err
	}
	if err := get(&tls.Config{RootCAs: roots, ServerName: "web.test"}); err != nil {
		t.Fatalf("TLS 1.3 request: %v", err)
	}
	// Counted at the first request, the connection still open.
	keep := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "web.test", NextProtos: []string{"http/1.1"}}}
	defer keep.CloseIdleConnections()
	resp, err := (&http.Client{Transport: keep}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := byVersion(t, reg)["swarmgate_tls_handshakes_total"]["TLS 1.3"]; n != 2 {
			return fmt.Errorf("TLS 1.3 handshakes with a connection open: %v, want 2", n)
		}
		return nil
	})
	if err := get(&tls.Config{RootCAs: roots, ServerName: "web.test", MaxVersion: tls.VersionTLS12}); err != nil {
		t.Fatalf("TLS 1.2 request: %v", err)
	}
	// The client rejects the server's certificate: the version was agreed.
	if err := get(&tls.Config{ServerName: "web.test"}); err == nil {
		t.Fatal("a client that does not trust the CA got an answer")
	}
	// No common cipher suite: TLS 1.2 was agreed first.
	if err := get(&tls.Config{RootCAs: roots, ServerName: "web.test", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}); err == nil {
		t.Fatal("a handshake without a common cipher suite succeeded")
	}
	// Not TLS at all, and a probe that sends nothing.
	for _, payload := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ""} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if payload != "" {
			c.Write([]byte(payload))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 512)) // until the server closes
		}
		c.Close()
	}

	want := map[string]map[string]float64{
		"swarmgate_tls_handshakes_total":       {"TLS 1.3": 2, "TLS 1.2": 1},
		"swarmgate_tls_handshake_errors_total": {"TLS 1.3": 1, "TLS 1.2": 1, "unknown": 1},
	}
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		got := byVersion(t, reg)
		for name, w := range want {
			if !maps.Equal(got[name], w) {
				return fmt.Errorf("%s by version: %v, want %v", name, got[name], w)
			}
		}
		return nil
	})
}

func byVersion(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			out[mf.GetName()][label(m, "version")] = m.GetCounter().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
