package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoad runs the loops against a real TLS server with the generated
// certificate: full handshakes never resume, resumed ones always do, and a
// server with another certificate fails every handshake.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := genCert(dir, "bench.local"); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "bench.crt"), filepath.Join(dir, "bench.key"))
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := genCert(other, "bench.local"); err != nil {
		t.Fatal(err)
	}
	otherPEM, err := os.ReadFile(filepath.Join(other, "bench.crt"))
	if err != nil {
		t.Fatal(err)
	}
	otherBlock, _ := pem.Decode(otherPEM)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	tests := []struct {
		name        string
		resume      bool
		version     uint16
		pin         []byte
		wantResumed bool
		wantErrors  bool
	}{
		{"TLS 1.3 full", false, tls.VersionTLS13, cert.Certificate[0], false, false},
		{"TLS 1.3 resumed", true, tls.VersionTLS13, cert.Certificate[0], true, false},
		{"TLS 1.2 full", false, tls.VersionTLS12, cert.Certificate[0], false, false},
		{"TLS 1.2 resumed", true, tls.VersionTLS12, cert.Certificate[0], true, false},
		{"another certificate", false, tls.VersionTLS13, otherBlock.Bytes, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config{
				addr: srv.Listener.Addr().String(), sni: "bench.local", pin: tt.pin, conns: 4,
				duration: 200 * time.Millisecond, resume: tt.resume, version: tt.version,
				curves: []tls.CurveID{tls.X25519}, timeout: 5 * time.Second,
			}
			res, err := load(context.Background(), c)
			if tt.wantErrors {
				// A resumed run fails at the priming handshake; a full
				// run counts every failure.
				if err == nil && (res.errors == 0 || res.handshakes != 0) {
					t.Fatalf("handshakes with the wrong certificate: %+v", res)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.handshakes == 0 || res.errors != 0 {
				t.Fatalf("result %+v: want handshakes and no errors", res)
			}
			if tt.wantResumed && res.resumed != res.handshakes {
				t.Errorf("resumed %d of %d", res.resumed, res.handshakes)
			}
			if !tt.wantResumed && res.resumed != 0 {
				t.Errorf("resumed %d full handshakes", res.resumed)
			}
			if res.p50 <= 0 || res.p99 < res.p50 {
				t.Errorf("p50 %v, p99 %v", res.p50, res.p99)
			}
		})
	}
}
