package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/fleet"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestFleetSessionTickets: two edges of one control plane seal session
// tickets with the fleet's keys, so a TLS 1.3 and a TLS 1.2 session that
// one edge issued resumes on the other.
func TestFleetSessionTickets(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.NewCA(t, "edge CA")
	ca.Issue(t, "app.example.org").WriteFiles(t, dir, "app.example.org")
	backend := testkit.Addr(testkit.Backend(t, "web"))
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeRoutes(t, routes, backend, "app.example.org")
	cp := startStateReplica(t, routes, testkit.UnusedAddr(t), &fleet.Memory{})
	var edges [2]*runningEdge
	for i := range edges {
		edges[i] = startEdge(t, edgeOptions{
			httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t),
			control: "tcp://" + cp.addr, drainTimeout: time.Second, dialTimeout: time.Second,
			maxBody: 1 << 20, maxHeader: 16 << 10, tlsOptions: tlsOptions{certs: dir},
		})
		edges[i].waitRoute(t, "app.example.org")
	}
	// get does one request over a new TLS connection (reading the answer
	// takes in the TLS 1.3 tickets sent after the handshake).
	get := func(addr string, conf *tls.Config) (bool, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
		if err != nil {
			return false, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: app.example.org\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return false, fmt.Errorf("status %d", resp.StatusCode)
		}
		return c.ConnectionState().DidResume, nil
	}
	for _, ver := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(ver), func(t *testing.T) {
			// Until both edges hold the keys (they poll every second until
			// then), a session may not resume; after that, every one must.
			check := func() error {
				conf := &tls.Config{RootCAs: ca.Pool, ServerName: "app.example.org", MaxVersion: ver, MinVersion: ver,
					ClientSessionCache: tls.NewLRUClientSessionCache(4), NextProtos: []string{"http/1.1"}}
				if resumed, err := get(edges[0].o.httpsAddr, conf); err != nil || resumed {
					return fmt.Errorf("first handshake on edge 0: resumed %v, %v", resumed, err)
				}
				resumed, err := get(edges[1].o.httpsAddr, conf)
				if err != nil || !resumed {
					return fmt.Errorf("edge 1 did not resume edge 0's session: %v", err)
				}
				return nil
			}
			testkit.Eventually(t, 10*time.Second, 100*time.Millisecond, check)
			for range 3 {
				if err := check(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
