package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestEdgeHTTP3AdvertisePort: with --http3-advertise-port, Alt-Svc names
// the port clients reach (a published port that is not the container's)
// instead of the local one; and the QUIC handshakes of HTTP/3 connections
// count in swarmgate_tls_handshakes_total beside the TCP ones.
func TestEdgeHTTP3AdvertisePort(t *testing.T) {
	cmd := newEdgeCmd(&logOptions{})
	if f := cmd.Flags().Lookup("http3-advertise-port"); f == nil || f.DefValue != "0" {
		t.Fatalf("--http3-advertise-port: %v, want a flag with default 0", f)
	}
	if err := cmd.Flags().Parse([]string{"--http3-advertise-port", "8443"}); err != nil {
		t.Fatal(err)
	}
	certs := t.TempDir()
	ca := testkit.NewCA(t, "edge CA")
	ca.Issue(t, "web.example.org", "files.example.org", "down.example.org").WriteFiles(t, certs, "site")
	web := testkit.Addr(testkit.Backend(t, "web"))
	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t),
		routes: http3Routes(t, web, web, web), routesPoll: time.Second, drainTimeout: 2 * time.Second, dialTimeout: time.Second,
		maxBody: 1 << 20, maxHeader: 16 << 10, http3: true, http3Port: 8443,
	}
	o.certs = certs
	startEdge(t, o)
	waitReady(t, o.adminAddr)
	handshakes := func() string {
		resp, err := http.Get("http://" + o.adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var lines []string
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "swarmgate_tls_handshake") {
				lines = append(lines, strings.TrimSpace(line))
			}
		}
		return strings.Join(lines, "; ")
	}

	// HTTP/3 first: its handshake is the only one so far.
	client, tr := h3Client(ca.Pool, o.httpsAddr)
	defer tr.Close()
	resp, err := client.Get("https://web.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/3.0" || resp.StatusCode != 200 {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if got := handshakes(); got != `swarmgate_tls_handshakes_total{version="TLS 1.3"} 1` {
			return fmt.Errorf("after one HTTP/3 connection: %s", got)
		}
		return nil
	})

	h2 := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: ca.Pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, o.httpsAddr)
		}}
	defer h2.CloseIdleConnections()
	resp, err = (&http.Client{Transport: h2, Timeout: 5 * time.Second}).Get("https://web.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("Alt-Svc"), `h3=":8443"; ma=86400`; got != want {
		t.Fatalf("Alt-Svc %q, want %q (the local port is %d)", got, want, portOf(o.httpsAddr))
	}
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if got := handshakes(); got != `swarmgate_tls_handshakes_total{version="TLS 1.3"} 2` {
			return fmt.Errorf("after one HTTP/3 and one TCP connection: %s", got)
		}
		return nil
	})
}
