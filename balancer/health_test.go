package balancer

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// checkResult is one OnCheck call.
type checkResult struct {
	addr string
	err  error
}

// runHealth starts hc.Run over eps and returns the OnCheck results and a
// stop func that cancels Run and waits for it to return.
func runHealth(t *testing.T, hc HealthCheck, eps []*Endpoint) (<-chan checkResult, func()) {
	t.Helper()
	results := make(chan checkResult, 64)
	hc.OnCheck = func(e *Endpoint, err error) { results <- checkResult{e.Addr, err} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		hc.Run(ctx, eps)
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return results, stop
}

func serverAddr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func TestHealthCheckFirstRound(t *testing.T) {
	var redirectFollowed atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		redirectFollowed.Store(true)
	}))
	defer elsewhere.Close()

	var gotPath, gotAgent atomic.Value
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath.Store(r.URL.RequestURI())
		gotAgent.Store(r.UserAgent())
	}))
	defer ok.Close()
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/x", http.StatusFound))
	defer redirect.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers only when the client gives up
	}))
	defer hanging.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name    string
		addr    string
		healthy bool
		reason  string // part of the error for an unhealthy endpoint
	}{
		{"200", serverAddr(ok), true, ""},
		{"302 not followed", serverAddr(redirect), true, ""},
		{"500", serverAddr(failing), false, "status 500"},
		{"404", serverAddr(notFound), false, "status 404"},
		{"timeout", serverAddr(hanging), false, "deadline exceeded"},
		{"connection refused", closedAddr, false, "refused"},
	}
	p := NewPool(PoolOptions{})
	var eps []*Endpoint
	for _, tt := range tests {
		e := p.Endpoint(tt.addr)
		e.SetHealthy(!tt.healthy) // each must flip
		eps = append(eps, e)
	}
	hc := HealthCheck{Path: "healthz?deep=1", Interval: time.Hour, Timeout: 200 * time.Millisecond}
	results, stop := runHealth(t, hc, eps)
	got := map[string]error{}
	for range tests {
		r := <-results
		got[r.addr] = r.err
	}
	stop()

	for i, tt := range tests {
		err := got[tt.addr]
		if tt.healthy != (err == nil) {
			t.Errorf("%s: check error %v, want healthy %v", tt.name, err, tt.healthy)
		}
		if err != nil && !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: error %q does not say %q", tt.name, err, tt.reason)
		}
		if eps[i].Available(time.Now()) != tt.healthy {
			t.Errorf("%s: Available = %v, want %v", tt.name, !tt.healthy, tt.healthy)
		}
	}
	if redirectFollowed.Load() {
		t.Error("the check followed a redirect")
	}
	if p, a := gotPath.Load(), gotAgent.Load(); p != "/healthz?deep=1" || a != "swarmgate-health" {
		t.Errorf("request %v with agent %v, want /healthz?deep=1 with swarmgate-health", p, a)
	}
}

func TestHealthCheckTicksAndRecovers(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	e := NewPool(PoolOptions{}).Endpoint(serverAddr(srv))
	results, stop := runHealth(t, HealthCheck{Interval: 5 * time.Millisecond, Client: client}, []*Endpoint{e})
	if r := <-results; r.err == nil {
		t.Fatal("503 reported healthy")
	}
	if e.Available(time.Now()) {
		t.Fatal("available after a failed check")
	}
	status.Store(http.StatusNoContent)
	// Later rounds come from the ticker; wait for the first one that sees the change.
	deadline := time.After(5 * time.Second)
	for recovered := false; !recovered; {
		select {
		case r := <-results:
			recovered = r.err == nil
		case <-deadline:
			t.Fatal("no passed check within 5s of the fix")
		}
	}
	stop()
	if !e.Available(time.Now()) {
		t.Fatal("not available after a passed check")
	}
	if client.CheckRedirect != nil {
		t.Fatal("Run modified the caller's client")
	}
}

func TestHealthCheckCancelledMidCheck(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	e := NewPool(PoolOptions{}).Endpoint(serverAddr(srv))
	results, stop := runHealth(t, HealthCheck{Interval: time.Hour, Timeout: time.Minute}, []*Endpoint{e})
	<-arrived
	stop()
	select {
	case r := <-results:
		t.Fatalf("a cancelled check reported %v", r.err)
	default:
	}
	if !e.Available(time.Now()) {
		t.Fatal("a cancelled check marked the endpoint down")
	}
}

func TestHealthCheckBadURL(t *testing.T) {
	e := NewPool(PoolOptions{}).Endpoint("bad host:80")
	results, stop := runHealth(t, HealthCheck{Interval: time.Hour}, []*Endpoint{e})
	r := <-results
	stop()
	if r.err == nil || !strings.HasPrefix(r.err.Error(), "balancer: health check") {
		t.Fatalf("error %v, want a wrapped health check error", r.err)
	}
	if e.Available(time.Now()) {
		t.Fatal("an unreachable URL left the endpoint available")
	}
}
