package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/fleet"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

// testFleetState is the control plane's state for the test: in Docker configs
// of a test prefix when a swarm manager runs here (required in CI), else in
// memory; either survives the control plane's restarts, as Raft does.
func testFleetState(t *testing.T) fleet.Store {
	cli, err := testkit.SwarmManager()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker in swarm mode is required in CI: %v", err)
		}
		t.Logf("no swarm manager (%v): the state is in memory", err)
		return &fleet.Memory{}
	}
	var b [2]byte
	rand.Read(b[:])
	key := make([]byte, 32)
	rand.Read(key)
	d, err := fleet.NewDocker(fleet.DockerOptions{Client: cli, Key: key, Prefix: "swarmgate-state-t" + hex.EncodeToString(b[:]) + "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Purge(context.Background()); err != nil {
			t.Error(err)
		}
		cli.Close()
	})
	return d
}

// dispatcher stands in for the Internet between the CA and the edges:
// Pebble's HTTP-01 and TLS-ALPN-01 connections arrive on its two ports and
// go to the edge the test chose for the host, and each is recorded.
type dispatcher struct {
	httpLn, tlsLn net.Listener

	mu     sync.Mutex // guards to and seen
	to     map[string]*edgeUnderTest
	seen   []validation
	proxy  *httputil.ReverseProxy
	server *http.Server
}

type validation struct {
	host, kind string // kind: http-01 or tls-alpn-01
	edge       *edgeUnderTest
}

func newDispatcher(t *testing.T) *dispatcher {
	d := &dispatcher{to: map[string]*edgeUnderTest{}}
	var err error
	if d.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if d.tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	d.proxy = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		e := d.pick(r.In.Host, "http-01")
		r.SetURL(&url.URL{Scheme: "http", Host: e.o.httpAddr})
		r.Out.Host = r.In.Host
	}}
	d.server = &http.Server{Handler: d.proxy, ReadHeaderTimeout: 5 * time.Second}
	go d.server.Serve(d.httpLn)
	t.Cleanup(func() { d.server.Close() })
	testkit.ServeConns(t, d.tlsLn, 30*time.Second, d.forwardTLS)
	return d
}

func (d *dispatcher) port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// send makes the CA's validations for host go to e.
func (d *dispatcher) send(host string, e *edgeUnderTest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.to[host] = e
}

func (d *dispatcher) pick(host, kind string) *edgeUnderTest {
	host, _, _ = strings.Cut(host, ":")
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.to[host]
	d.seen = append(d.seen, validation{host: host, kind: kind, edge: e})
	return e
}

// validations returns what reached the edges for host.
func (d *dispatcher) validations(host string) []validation {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []validation
	for _, v := range d.seen {
		if v.host == host {
			out = append(out, v)
		}
	}
	return out
}

// forwardTLS reads the ClientHello for its server name, then splices the
// connection to the chosen edge's HTTPS port, the hello first.
func (d *dispatcher) forwardTLS(c net.Conn) {
	var hello bytes.Buffer
	var sni string
	errSeen := errors.New("hello seen")
	tls.Server(readOnly{Conn: c, r: io.TeeReader(c, &hello)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) { sni = h.ServerName; return nil, errSeen },
	}).Handshake()
	if sni == "" {
		return
	}
	e := d.pick(sni, "tls-alpn-01")
	up, err := net.Dial("tcp", e.o.httpsAddr)
	if err != nil {
		return
	}
	defer up.Close()
	up.Write(hello.Bytes())
	done := make(chan struct{})
	go func() { io.Copy(c, up); close(done) }()
	io.Copy(up, c)
	up.(*net.TCPConn).CloseWrite()
	<-done
}

// readOnly feeds crypto/tls the client's bytes and swallows its answers.
type readOnly struct {
	net.Conn
	r io.Reader
}

func (c readOnly) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c readOnly) Write(p []byte) (int, error) { return len(p), nil }

// serial handshakes with the edge for host and returns the serial of the
// certificate it serves, which must verify against roots.
func serial(e *edgeUnderTest, host string, roots *x509.CertPool, timeout time.Duration) (string, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", e.o.httpsAddr, &tls.Config{ServerName: host, RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// obtained reads the certificates an edge obtained from its /metrics.
func obtained(t *testing.T, e *edgeUnderTest) int {
	code, body := e.get(e.o.adminAddr, "", "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "swarmgate_tls_acme_certificates_obtained_total "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// autoTLS is the label of the test's hosts.
const autoTLS = "swarmgate.tls: auto"

// startEdgeProcess runs `swarmgate edge` with o's addresses, control plane
// and ACME flags in a process of its own (the test binary, see runMainEnv):
// certmagic keeps the challenges it solves in process-wide memory, so edges
// in one process would answer each other's validations from there, and the
// shared state would go untested.
func startEdgeProcess(t *testing.T, o edgeOptions) *runningEdge {
	t.Helper()
	args := []string{"edge", "--log-level=debug", "--access-log=false", "--certs=" + t.TempDir(),
		"--http=" + o.httpAddr, "--https=" + o.httpsAddr, "--admin=" + o.adminAddr, "--control=" + o.control,
		"--drain-timeout=1s", "--acme", "--acme-directory=" + o.acmeDirectory, "--acme-ca=" + o.acmeCA}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	e := &edgeUnderTest{o: o, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		if err := testkit.Receive(t, done, 30*time.Second, "the edge process to stop"); err != nil {
			t.Errorf("edge process: %v", err)
		}
		if t.Failed() {
			t.Logf("edge %s output:\n%s", o.httpsAddr, out.String())
		}
		e.client.CloseIdleConnections()
	}
	t.Cleanup(stop)
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		if code, body := e.get(o.adminAddr, "", "/readyz"); code != 200 {
			return fmt.Errorf("edge /readyz: %d %s", code, body)
		}
		return nil
	})
	return &runningEdge{edgeUnderTest: e, stop: stop, output: out.String}
}

// answeredFromState reports how many validations for host e answered with
// a challenge it read from the shared state (certmagic logs each answer and
// whether it came from the storage, "distributed", or its own memory), and
// how many it answered from memory.
func answeredFromState(e *runningEdge, host string) (fromState, fromMemory int) {
	for _, l := range strings.Split(e.output(), "\n") {
		if !strings.Contains(l, "served key authentication") || !strings.Contains(l, `"`+host+`"`) {
			continue
		}
		if strings.Contains(l, `"distributed":true`) {
			fromState++
		} else {
			fromMemory++
		}
	}
	return fromState, fromMemory
}

// TestFleetACMEPebble runs three edges (processes) against one control
// plane and a real Pebble whose validations reach the edges through a dispatcher: for
// each host, the test makes one edge order and sends the CA's validation to
// another, which answers it from the shared state; every edge then serves
// the same certificate; Pebble takes one order per host; all edges and the
// control plane restart and serve the same certificates with no new order;
// with the control plane down the edges go on serving, and a new host waits
// for it and gets its certificate once it is back.
func TestFleetACMEPebble(t *testing.T) {
	bin := testkit.PebbleBinary(t)
	hosts := []string{"a.fleet.test", "b.fleet.test", "c.fleet.test"}
	const late, denied = "late.fleet.test", "denied.fleet.test"
	disp := newDispatcher(t)
	dns := testkit.ServeDNS(t, append([]string{late, denied}, hosts...))
	p := testkit.StartPebble(t, bin, disp.port(disp.httpLn), disp.port(disp.tlsLn), dns)
	roots := p.IssuerRoots(t)
	dir := t.TempDir()
	caFile := testkit.WriteFile(t, dir, "pebble-api.pem", p.APIRootPEM)

	backend := testkit.Addr(testkit.Backend(t, "web"))
	routes := filepath.Join(dir, "routes.yaml")
	writeRoutesWith(t, routes, backend, autoTLS)
	state := testFleetState(t)
	cpAddr := testkit.UnusedAddr(t)
	cp := startStateReplica(t, routes, cpAddr, state)

	opts := make([]edgeOptions, 3)
	edges := make([]*runningEdge, 3)
	for i := range opts {
		opts[i] = edgeOptions{
			httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t),
			control: "tcp://" + cpAddr, drainTimeout: time.Second, dialTimeout: time.Second,
			maxBody: 1 << 20, maxHeader: 16 << 10,
			tlsOptions: tlsOptions{acme: true, acmeDirectory: p.Directory, acmeCA: caFile},
		}
		edges[i] = startEdgeProcess(t, opts[i])
	}

	// Each host: edge i orders, edge i+1 answers the CA.
	labelled := time.Now()
	writeRoutesWith(t, routes, backend, autoTLS, hosts...)
	serials := map[string]string{}
	for i, h := range hosts {
		orderer, answerer := edges[i], edges[(i+1)%3]
		disp.send(h, answerer.edgeUnderTest)
		var s string
		asked := time.Now()
		testkit.Eventually(t, 90*time.Second, 200*time.Millisecond, func() (err error) {
			s, err = serial(orderer.edgeUnderTest, h, roots, 60*time.Second)
			return err
		})
		served := time.Now()
		t.Logf("%s: served by the ordering edge %v after its first handshake (%v after the label)", h,
			served.Sub(asked).Round(time.Millisecond), served.Sub(labelled).Round(time.Millisecond))
		serials[h] = s
		vs := disp.validations(h)
		if len(vs) == 0 {
			t.Fatalf("%s: no validation reached an edge", h)
		}
		for _, v := range vs {
			if v.edge != answerer.edgeUnderTest {
				t.Fatalf("%s: a validation went to another edge than the answerer", h)
			}
		}
		if fromState, fromMemory := answeredFromState(answerer, h); fromState == 0 || fromMemory != 0 {
			t.Fatalf("%s: the answering edge answered %d validations from the shared state and %d from its memory", h, fromState, fromMemory)
		}
		t.Logf("%s: %d validation connection(s) (%s) answered by an edge that did not order, from the shared state", h, len(vs), vs[0].kind)
		for j, e := range edges {
			got, err := serial(e.edgeUnderTest, h, roots, 10*time.Second)
			if err != nil || got != s {
				t.Fatalf("%s: edge %d serves serial %s (%v), want %s", h, j, got, err, s)
			}
		}
		t.Logf("%s: every edge serves serial %s, the last %v after the first", h, s, time.Since(served).Round(time.Millisecond))
	}
	// A host without tls=auto gets nothing and costs no order.
	if _, err := serial(edges[0].edgeUnderTest, denied, roots, 10*time.Second); err == nil {
		t.Fatalf("%s, not a tls=auto host, got a certificate", denied)
	}
	orders := strings.Count(p.Output(), "Added order")
	if orders != len(hosts) {
		t.Fatalf("Pebble took %d orders for %d hosts", orders, len(hosts))
	}
	total := 0
	for i, e := range edges {
		n := obtained(t, e.edgeUnderTest)
		if n != 1 {
			t.Errorf("edge %d obtained %d certificates, want 1 (its own host)", i, n)
		}
		total += n
	}
	t.Logf("orders at Pebble: %d; certificates obtained, summed over the edges: %d", orders, total)

	// Everything restarts: the same certificates, no order.
	for _, e := range edges {
		e.stop()
	}
	cp.stop()
	cp = startStateReplica(t, routes, cpAddr, state)
	for i := range edges {
		edges[i] = startEdgeProcess(t, opts[i])
	}
	for _, h := range hosts {
		for j, e := range edges {
			var got string
			testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (err error) {
				got, err = serial(e.edgeUnderTest, h, roots, 10*time.Second)
				return err
			})
			if got != serials[h] {
				t.Fatalf("after the restart, edge %d serves %s for %s, want %s", j, got, h, serials[h])
			}
		}
	}
	if n := strings.Count(p.Output(), "Added order"); n != orders {
		t.Fatalf("the restart cost %d new orders", n-orders)
	}

	// The control plane down: the edges serve what they have; the late
	// host (in their table already) gets no certificate until the control
	// plane is back, then one.
	writeRoutesWith(t, routes, backend, autoTLS, append([]string{late}, hosts...)...)
	testkit.Eventually(t, 20*time.Second, 50*time.Millisecond, func() error {
		for i, e := range edges {
			if code, body := e.get(opts[i].adminAddr, "", "/api/routes"); code != 200 || !strings.Contains(body, late) {
				return fmt.Errorf("edge %d: /api/routes %d without %s", i, code, late)
			}
		}
		return nil
	})
	disp.send(late, edges[2].edgeUnderTest)
	cp.stop()
	for _, h := range hosts {
		for j, e := range edges {
			if got, err := serial(e.edgeUnderTest, h, roots, 10*time.Second); err != nil || got != serials[h] {
				t.Fatalf("control plane down: edge %d serves %s for %s (%v), want %s", j, got, h, err, serials[h])
			}
		}
	}
	if _, err := serial(edges[0].edgeUnderTest, late, roots, 5*time.Second); err == nil {
		t.Fatalf("%s got a certificate with the control plane down", late)
	}
	back := time.Now()
	startStateReplica(t, routes, cpAddr, state)
	testkit.Eventually(t, 90*time.Second, 200*time.Millisecond, func() error {
		_, err := serial(edges[0].edgeUnderTest, late, roots, 30*time.Second)
		return err
	})
	t.Logf("%s: served %v after the control plane came back", late, time.Since(back).Round(time.Millisecond))
	if n := strings.Count(p.Output(), "Added order"); n != orders+1 {
		t.Fatalf("%d orders for the late host, want 1", n-orders)
	}
}
