package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoad runs each protocol against a real server (TLS with h2 and
// HTTP/1.1 on TCP, HTTP/3 on UDP, the same port): every request is answered
// over the protocol asked for; a server with another certificate fails.
func TestLoad(t *testing.T) {
	ca := testkit.NewCA(t, "bench CA")
	leaf := ca.Issue(t, "bench.local")
	cert := leaf.TLSCertificate()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h3 := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}})}
	go h3.Serve(pc)
	defer func() { h3.Close(); pc.Close() }()

	for _, tt := range []struct{ proto, want string }{{"h1", "HTTP/1.1"}, {"h2", "HTTP/2.0"}, {"h3", "HTTP/3.0"}} {
		t.Run(tt.proto, func(t *testing.T) {
			c := config{addr: addr, url: "https://bench.local/", proto: tt.proto, pin: leaf.Cert.Raw, conns: 4,
				duration: 300 * time.Millisecond, timeout: 5 * time.Second}
			res, err := load(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if res.requests == 0 || res.errors != 0 || res.proto != tt.want {
				t.Fatalf("%s", res)
			}
			if line := res.String(); !strings.Contains(line, "proto="+tt.want) || !strings.HasPrefix(line, "requests=") {
				t.Errorf("line %q", line)
			}
		})
	}
	t.Run("another certificate", func(t *testing.T) {
		other := testkit.NewCA(t, "other").Issue(t, "bench.local")
		c := config{addr: addr, url: "https://bench.local/", proto: "h2", pin: other.Cert.Raw, conns: 1,
			duration: 100 * time.Millisecond, timeout: time.Second}
		if _, err := load(context.Background(), c); err == nil || !strings.Contains(err.Error(), "another certificate") {
			t.Fatalf("err = %v", err)
		}
	})
}
