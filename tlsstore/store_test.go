package tlsstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// selectionDir writes the certificates of the selection tests and returns
// the directory.
func selectionDir(t *testing.T, ca *testkit.CA) string {
	t.Helper()
	dir := t.TempDir()
	for name, names := range map[string][]string{
		"exact":   {"app.example.org", "API.Example.org"}, // SANs compare without case
		"wild":    {"*.example.org"},
		"deep":    {"*.b.example.org"},
		"routed":  {"internal.invalid"},
		"default": {"default.invalid"},
	} {
		l := ca.Issue(t, names...)
		writeAtomic(t, dir, name+".crt", l.CertPEM)
		writeAtomic(t, dir, name+".key", l.KeyPEM)
	}
	return dir
}

func TestGetCertificateOrder(t *testing.T) {
	ca := testkit.NewCA(t, "ca")
	dir := selectionDir(t, ca)
	routes := map[string]string{
		"routed.example.net": "routed",
		"app.example.org":    "routed",  // a SAN match wins over the route
		"x.example.org":      "routed",  // so does a wildcard
		"gone.example.net":   "missing", // names no loaded certificate
	}
	routeCert := func(h string) (string, bool) { n, ok := routes[h]; return n, ok }
	const fallback, noCert = "(fallback)", ""
	tests := []struct {
		name     string
		sni      string
		def      string
		fallback bool
		want     string // certificate name, fallback or noCert (error)
	}{
		{"exact", "app.example.org", "", false, "exact"},
		{"exact, upper case SNI", "APP.Example.ORG", "", false, "exact"},
		{"exact, upper case SAN", "api.example.org", "", false, "exact"},
		{"exact, trailing dot", "app.example.org.", "", false, "exact"},
		{"exact beats wildcard", "app.example.org", "default", true, "exact"},
		{"wildcard", "x.example.org", "", false, "wild"},
		{"wildcard, upper case", "X.EXAMPLE.org", "", false, "wild"},
		{"wildcard one level deeper", "y.b.example.org", "", false, "deep"},
		{"wildcard covers one label only", "z.y.example.org", "default", false, "default"},
		{"wildcard does not cover its apex", "example.org", "", false, noCert},
		{"route-named", "routed.example.net", "", false, "routed"},
		{"route-named, upper case", "Routed.Example.NET", "default", true, "routed"},
		{"route names a missing certificate", "gone.example.net", "default", false, "default"},
		{"default", "unknown.example.net", "default", true, "default"},
		{"default without SNI", "", "default", false, "default"},
		{"default not loaded, fallback", "unknown.example.net", "nope", true, fallback},
		{"fallback", "unknown.example.net", "", true, fallback},
		{"fallback without SNI", "", "", true, fallback},
		{"nothing", "unknown.example.net", "", false, noCert},
		{"nothing without SNI", "", "", false, noCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Options{Dir: dir, Default: tt.def, Fallback: tt.fallback, RouteCert: routeCert})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
			switch tt.want {
			case noCert:
				if err == nil {
					t.Fatalf("got %s, want an error", got.Leaf.Subject)
				}
			case fallback:
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Leaf.DNSNames) != 0 || !bytes.Equal(got.Leaf.RawIssuer, got.Leaf.RawSubject) {
					t.Fatalf("got %s issued by %s, want the self-signed fallback", got.Leaf.Subject, got.Leaf.Issuer)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				want, _ := s.Lookup(tt.want)
				if got != want {
					t.Fatalf("got certificate for %v, want %q (%v)", got.Leaf.DNSNames, tt.want, want.Leaf.DNSNames)
				}
			}
		})
	}
}

// TestGetCertificateOverlap: two certificates for one name; the one that
// expires last is served (a renewed certificate beside the old one).
func TestGetCertificateOverlap(t *testing.T) {
	ca := testkit.NewCA(t, "ca")
	dir := t.TempDir()
	older := ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"app.example.org"}, NotAfter: time.Now().Add(time.Hour)})
	newer := ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"app.example.org"}, NotAfter: time.Now().Add(2 * time.Hour)})
	writeAtomic(t, dir, "z-old.pem", cat(older.CertPEM, older.KeyPEM))
	writeAtomic(t, dir, "a-new.pem", cat(newer.CertPEM, newer.KeyPEM))
	for range 5 { // each load builds its maps anew: iteration order must not matter
		s, err := New(Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "app.example.org"})
		if err != nil || !got.Leaf.Equal(newer.Cert) {
			t.Fatalf("got %v, %v; want the later-expiring certificate", got, err)
		}
	}
}

// TestReloadKeepsOld walks one certificate name through good and bad
// replacements, calling Reload directly so every step is deterministic.
func TestReloadKeepsOld(t *testing.T) {
	ca := testkit.NewCA(t, "ca")
	v1 := ca.Issue(t, "app.example.org")
	v2 := ca.Issue(t, "app.example.org")
	v3 := ca.Issue(t, "app.example.org", "www.example.org")
	dir := t.TempDir()
	writeAtomic(t, dir, "app.crt", v1.CertPEM)
	writeAtomic(t, dir, "app.key", v1.KeyPEM)
	core, logs := observer.New(zapcore.InfoLevel)
	reg := prometheus.NewPedanticRegistry()
	s, err := New(Options{Dir: dir, Logger: zap.New(core), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	rm := func(name string) func(t *testing.T) {
		return func(t *testing.T) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	put := func(name string, data []byte) func(t *testing.T) {
		return func(t *testing.T) { writeAtomic(t, dir, name, data) }
	}
	steps := []struct {
		name    string
		change  func(t *testing.T)
		wantErr string            // "" = Reload succeeds
		want    *x509.Certificate // served for app.example.org; nil = none
		errors  float64           // reload errors counted so far for "app"
	}{
		{"unchanged", func(*testing.T) {}, "", v1.Cert, 0},
		{"bad PEM keeps v1", put("app.crt", []byte("-----BEGIN CERTIFICATE-----\nbroken\n")), "no CERTIFICATE", v1.Cert, 1},
		{"still bad: not reported again", func(*testing.T) {}, "", v1.Cert, 1},
		{"crt v2 before its key: mismatch keeps v1", put("app.crt", v2.CertPEM), "matches no certificate", v1.Cert, 2},
		{"key v2 arrives: v2 served", put("app.key", v2.KeyPEM), "", v2.Cert, 2},
		{"key removed: v2 kept", rm("app.key"), "no matching .key", v2.Cert, 3},
		{"switch to app.pem: v3 served", func(t *testing.T) { rm("app.crt")(t); put("app.pem", cat(v3.KeyPEM, v3.CertPEM))(t) }, "", v3.Cert, 3},
		{"oversized pem keeps v3", put("app.pem", bytes.Repeat([]byte("A"), maxFileSize+1)), "larger than", v3.Cert, 4},
		{"restored", put("app.pem", cat(v3.CertPEM, v3.KeyPEM)), "", v3.Cert, 4},
		{"removed", rm("app.pem"), "", nil, 4},
	}
	for _, st := range steps {
		st.change(t)
		err := s.Reload()
		if st.wantErr == "" && err != nil || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
			t.Fatalf("%s: Reload() = %v, want error containing %q", st.name, err, st.wantErr)
		}
		got, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "app.example.org"})
		switch {
		case st.want == nil && err == nil:
			t.Fatalf("%s: served %v, want no certificate", st.name, got.Leaf.DNSNames)
		case st.want != nil && (err != nil || !got.Leaf.Equal(st.want)):
			t.Fatalf("%s: served the wrong certificate (err %v)", st.name, err)
		}
		if n := testkit.MetricValue(t, s.metrics.reloadErrors.WithLabelValues("app")); n != st.errors {
			t.Fatalf("%s: reload errors = %v, want %v", st.name, n, st.errors)
		}
		if st.want != nil {
			if exp := testkit.MetricValue(t, s.metrics.expiry.WithLabelValues("app")); exp != float64(st.want.NotAfter.Unix()) {
				t.Fatalf("%s: expiry gauge = %v, want %v", st.name, exp, st.want.NotAfter.Unix())
			}
		} else if n := count(s.metrics.expiry); n != 0 {
			t.Fatalf("%s: %d expiry series left for a removed certificate", st.name, n)
		}
	}
	if _, ok := s.Lookup("app"); ok {
		t.Error("removed certificate still found by name")
	}
	if n := logs.FilterMessageSnippet("keeping the previous").Len(); n != 4 {
		t.Errorf("%d load errors logged, want 4", n)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, "PRIVATE KEY") {
				t.Fatalf("key material logged: %v", e)
			}
		}
	}
}

// TestHotReload replaces a certificate the way Docker and operators do
// (write a temporary file, rename it) while a client loops handshakes
// against a real listener: no handshake fails, and the new certificate is
// served once Run has seen the file.
func TestHotReload(t *testing.T) {
	ca := testkit.NewCA(t, "ca")
	v1 := ca.Issue(t, "app.example.org")
	v2 := ca.Issue(t, "app.example.org")
	dir := t.TempDir()
	writeAtomic(t, dir, "app.pem", cat(v1.CertPEM, v1.KeyPEM))
	s, err := New(Options{Dir: dir, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { s.Run(ctx) })
	addr := serveTLS(t, ServerConfig(s.GetCertificate, ConfigOptions{}), func(c *tls.Conn) {
		_ = c.Handshake() // the client reports failures
		// Read until the client closes, so that TLS 1.3 session
		// tickets are sent and no RST races the client's read.
		_, _ = c.Read(make([]byte, 1))
	})

	const (
		maxHandshakes = 3000
		maxTime       = 10 * time.Second
	)
	type result struct {
		serial string
		err    error
	}
	results := make(chan result, maxHandshakes)
	stop := make(chan struct{})
	wg.Go(func() {
		defer close(results)
		deadline := time.Now().Add(maxTime)
		cfg := &tls.Config{RootCAs: ca.Pool, ServerName: "app.example.org", ClientSessionCache: nil}
		for i := 0; i < maxHandshakes && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				results <- result{err: err}
				continue
			}
			results <- result{serial: c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()}
			c.Close()
		}
	})

	var (
		total, fails, before, after int
		swapped, sawV2, stopped     bool
		flipBack                    bool
	)
	for r := range results {
		total++
		switch {
		case r.err != nil:
			fails++
			t.Errorf("handshake %d: %v", total, r.err)
		case r.serial == v2.Cert.SerialNumber.String():
			sawV2 = true
			after++
		case r.serial == v1.Cert.SerialNumber.String():
			if sawV2 {
				flipBack = true
			}
			before++
		default:
			t.Errorf("handshake %d: unknown certificate %s", total, r.serial)
		}
		if !swapped && total == 50 {
			writeAtomic(t, dir, "app.pem", cat(v2.CertPEM, v2.KeyPEM))
			swapped = true
		}
		if after == 50 && !stopped {
			close(stop)
			stopped = true
		}
	}
	t.Logf("%d handshakes: %d with the old certificate, %d with the new, %d failed", total, before, after, fails)
	if !sawV2 {
		t.Fatal("the new certificate was never served")
	}
	if flipBack {
		t.Error("the old certificate was served again after the new one")
	}
	if got, _ := s.Lookup("app"); !got.Leaf.Equal(v2.Cert) {
		t.Error("Lookup still returns the old certificate")
	}
}
