package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestEdgeHandOverHTTPS restarts an edge by socket hand-over while clients
// open a new TLS connection for every request: the HTTPS listener's SNI peek
// must not drop a connection it had already accepted. Zero errors.
func TestEdgeHandOverHTTPS(t *testing.T) {
	certs := t.TempDir()
	ca := testkit.NewCA(t, "edge CA")
	ca.Issue(t, "site.example.org").WriteFiles(t, certs, "site")
	roots := ca.Pool
	web := testkit.Addr(testkit.Backend(t, "web"))
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: web
    labels: {swarmgate.hosts: site.example.org, swarmgate.port: "80", swarmgate.tls: site}
    endpoints: [%q]
`, web)), 0o644)
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), routes: routes, routesPoll: time.Second,
		drainTimeout: 5 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
		handover: filepath.Join(t.TempDir(), "edge.sock"),
	}
	o.certs = certs
	start := func() (context.CancelFunc, chan error) { return runEdgeAsync(t, o) }
	cancelOld, oldDone := start()
	defer cancelOld()

	get := func(c *http.Client) error { return getOK(c, "https://site.example.org/x") }
	newClient := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true, // a new TLS handshake per request: the accept path is under test
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, o.httpsAddr)
			},
		}}
	}
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if err := get(newClient()); err != nil {
			return fmt.Errorf("edge never served HTTPS: %w", err)
		}
		return nil
	})

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			for n := 0; n < 3000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := get(c); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	cancelNew, newDone := start() // takes over; the old edge drains and exits
	defer cancelNew()
	if err := testkit.Receive(t, oldDone, 15*time.Second, "exit of the old edge after the hand-over"); err != nil {
		t.Fatalf("old edge: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	cancelNew()
	if err := <-newDone; err != nil {
		t.Fatalf("new edge: %v", err)
	}
	t.Logf("HTTPS hand-over under load: %d requests ok, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (first: %v)", failed.Load(), firstErr.Load())
	}
}

// runEdgeAsync runs `swarmgate edge` with o, as main would, until cancel;
// done receives what runEdge returned. A hand-over test runs two.
func runEdgeAsync(t *testing.T, o edgeOptions) (cancel context.CancelFunc, done chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- runEdge(ctx, o, zaptest.NewLogger(t)) }()
	return cancel, done
}

// getOK GETs url and reads the answer: an error unless it is a 200.
func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
