package tlsstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/acme"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestACMEPebble issues certificates from a real Pebble ACME server whose
// validation authority really connects to this test: a DNS responder tells
// it that the test hosts live on 127.0.0.1, its HTTP-01 port is the test's
// HTTP listener and its TLS-ALPN-01 port the test's TLS listener. One host
// is validated over TLS-ALPN-01, the other over HTTP-01 (its TLS-ALPN-01
// handshakes are refused, so autocert falls back, as on an edge whose :443
// the CA cannot reach). A host the table does not allow gets no order.
func TestACMEPebble(t *testing.T) {
	bin := testkit.PebbleBinary(t)
	const (
		alpnHost   = "alpn.swarmgate.test"
		httpHost   = "http.swarmgate.test"
		deniedHost = "denied.swarmgate.test"
	)
	allowed := map[string]bool{alpnHost: true, httpHost: true}

	// The test's edge listeners, bound first so Pebble's config can name
	// their ports.
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := testkit.ServeDNS(t, []string{alpnHost, httpHost, deniedHost})
	p := testkit.StartPebble(t, bin, port(httpLn), port(tlsLn), dnsAddr)

	// New-order requests to the CA are counted, to prove that a refused
	// host and a cached certificate cause none. (Other requests, such as
	// autocert's background deactivation of leftover authorizations, may
	// happen at any time.)
	var orders atomic.Int64
	newOrder := p.NewOrderURL(t)
	caClient := &http.Client{Timeout: 30 * time.Second, Transport: countingTransport{
		n:     &orders,
		match: func(r *http.Request) bool { return r.URL.String() == newOrder },
		next:  &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.APIRoots}, DisableKeepAlives: true},
	}}
	reg := prometheus.NewPedanticRegistry()
	cacheDir := t.TempDir()
	a, err := NewACME(ACMEOptions{
		DirectoryURL: p.Directory,
		Email:        "ops@swarmgate.test",
		CacheDir:     cacheDir,
		HTTPClient:   caClient,
		HostAllowed:  func(h string) bool { return allowed[h] },
		Logger:       zaptest.NewLogger(t),
		Registerer:   reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := New(Options{Dir: t.TempDir(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	get := Combine(store, a)

	// What the CA's validation authority did, as seen by the listeners.
	var (
		mu           sync.Mutex
		alpnSeen     = map[string]int{} // TLS-ALPN-01 handshakes by SNI
		alpnRefused  = map[string]int{}
		http01Served = map[string]int{} // HTTP-01 answers with 200, by host
	)
	tlsCfg := ServerConfig(func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if isACMEChallenge(hello) {
			mu.Lock()
			defer mu.Unlock()
			if hello.ServerName == httpHost {
				alpnRefused[hello.ServerName]++
				return nil, errors.New("test: TLS-ALPN-01 disabled for this host")
			}
			alpnSeen[hello.ServerName]++
		}
		return get(hello)
	}, ConfigOptions{ACME: true})
	serveTLSOn(t, tls.NewListener(tlsLn, tlsCfg))
	acmeHTTP := a.HTTPHandler(http.NotFoundHandler())
	serveHTTPOn(t, httpLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		acmeHTTP.ServeHTTP(rec, r)
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") && rec.status == http.StatusOK {
			mu.Lock()
			http01Served[normalizeHost(r.Host)]++
			mu.Unlock()
		}
	}))

	// Both hosts at once: issuance blocks the handshake until the order is
	// done.
	roots := p.IssuerRoots(t)
	var wg sync.WaitGroup
	var leaves sync.Map // host -> *x509.Certificate
	for _, host := range []string{alpnHost, httpHost} {
		wg.Go(func() {
			cs, err := handshake(tlsLn.Addr().String(), &tls.Config{ServerName: host, RootCAs: roots, NextProtos: []string{"h2"}})
			if err != nil {
				t.Errorf("%s: handshake: %v", host, err)
				return
			}
			if cs.NegotiatedProtocol != "h2" {
				t.Errorf("%s: ALPN %q, want h2", host, cs.NegotiatedProtocol)
			}
			leaf := cs.PeerCertificates[0]
			if err := leaf.VerifyHostname(host); err != nil {
				t.Errorf("%s: %v", host, err)
			}
			if !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
				t.Errorf("%s: issued by %q, want Pebble", host, leaf.Issuer.CommonName)
			}
			if got := testkit.MetricValue(t, a.metrics.expiry.WithLabelValues(host)); got != float64(leaf.NotAfter.Unix()) {
				t.Errorf("%s: expiry gauge %v, want %v", host, got, leaf.NotAfter.Unix())
			}
			if _, err := os.Stat(filepath.Join(cacheDir, host)); err != nil {
				t.Errorf("%s: certificate not in the cache directory: %v", host, err)
			}
			leaves.Store(host, leaf)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// One order for the TLS-ALPN-01 host; two for the other: the first
	// fails on TLS-ALPN-01, the second passes over HTTP-01.
	if n := orders.Load(); n != 3 {
		t.Errorf("%d orders, want 3", n)
	}
	// Served again from memory, with no new order.
	before := orders.Load()
	for _, host := range []string{alpnHost, httpHost} {
		leaf, _ := leaves.Load(host)
		cs, err := handshake(tlsLn.Addr().String(), &tls.Config{ServerName: host, RootCAs: roots})
		if err != nil {
			t.Errorf("%s: second handshake: %v", host, err)
		} else if !cs.PeerCertificates[0].Equal(leaf.(*x509.Certificate)) {
			t.Errorf("%s: second handshake got another certificate", host)
		}
	}
	if n := orders.Load() - before; n != 0 {
		t.Errorf("second handshakes made %d new orders", n)
	}
	mu.Lock()
	if alpnSeen[alpnHost] == 0 {
		t.Errorf("no TLS-ALPN-01 validation handshake for %s", alpnHost)
	}
	if http01Served[alpnHost] != 0 {
		t.Errorf("%s was validated over HTTP-01 too", alpnHost)
	}
	if http01Served[httpHost] == 0 {
		t.Errorf("no HTTP-01 validation request for %s", httpHost)
	}
	if alpnRefused[httpHost] == 0 {
		t.Errorf("%s never tried TLS-ALPN-01 first", httpHost)
	}
	t.Logf("validations: TLS-ALPN-01 %v (refused %v), HTTP-01 %v", alpnSeen, alpnRefused, http01Served)
	mu.Unlock()

	// A host the table does not publish with tls=auto: the handshake fails
	// and the CA hears nothing of it.
	before = orders.Load()
	if _, err := handshake(tlsLn.Addr().String(), &tls.Config{ServerName: deniedHost, RootCAs: roots}); err == nil {
		t.Errorf("%s: handshake succeeded", deniedHost)
	}
	if _, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: deniedHost}); err == nil || !strings.Contains(err.Error(), "not served with tls=auto") {
		t.Errorf("%s: GetCertificate err = %v", deniedHost, err)
	}
	// Its HTTP-01 path is refused too.
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpLn.Addr().String()+"/.well-known/acme-challenge/x", nil)
	req.Host = deniedHost
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: HTTP-01 path status %d, want 403", deniedHost, resp.StatusCode)
		}
	}
	if n := orders.Load() - before; n != 0 {
		t.Errorf("refused host caused %d new orders", n)
	}
	if got := testkit.MetricValue(t, a.metrics.refused); got != 2 {
		t.Errorf("refused counter %v, want 2", got)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, deniedHost)); err == nil {
		t.Errorf("%s has a cached certificate", deniedHost)
	}
}

// TestACMEPolicy checks the host policy and the combined selector without a
// CA: nothing here may reach the network.
func TestACMEPolicy(t *testing.T) {
	var calls atomic.Int64
	a, err := NewACME(ACMEOptions{
		DirectoryURL: "http://127.0.0.1:1/unreachable",
		HTTPClient: &http.Client{Transport: countingTransport{n: &calls, next: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("no network in this test")
		})}},
		HostAllowed: func(h string) bool { return h == "auto.example.org" },
	})
	if err != nil {
		t.Fatal(err)
	}
	ca := testkit.NewCA(t, "ca")
	dir := t.TempDir()
	l := ca.Issue(t, "*.example.org")
	writeAtomic(t, dir, "wild.pem", cat(l.CertPEM, l.KeyPEM))
	store, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	wild, _ := store.Lookup("wild")
	get := Combine(store, a)
	tests := []struct {
		name    string
		hello   *tls.ClientHelloInfo
		allowed bool
		want    *tls.Certificate // from Combine; nil = error
	}{
		{"allowed", &tls.ClientHelloInfo{ServerName: "auto.example.org"}, true, wild}, // CA unreachable: the store's wildcard serves
		{"allowed, upper case", &tls.ClientHelloInfo{ServerName: "AUTO.example.org."}, true, wild},
		{"not allowed, store", &tls.ClientHelloInfo{ServerName: "other.example.org"}, false, wild},
		{"not allowed, nothing", &tls.ClientHelloInfo{ServerName: "other.example.net"}, false, nil},
		{"no SNI", &tls.ClientHelloInfo{}, false, nil},
		{"challenge without token", &tls.ClientHelloInfo{ServerName: "auto.example.org", SupportedProtos: []string{acme.ALPNProto}}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Allowed(tt.hello.ServerName); got != tt.allowed {
				t.Errorf("Allowed = %v, want %v", got, tt.allowed)
			}
			got, err := get(tt.hello)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got a certificate for %v, want an error", got.Leaf.DNSNames)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
	// Only the two allowed handshakes tried the CA.
	if calls.Load() == 0 {
		t.Error("allowed hosts never reached the ACME client")
	}
	if got := testkit.MetricValue(t, a.metrics.errors.WithLabelValues("auto.example.org")); got != 2 {
		t.Errorf("ACME errors for auto.example.org = %v, want 2", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countingTransport counts the requests match accepts (all if nil).
type countingTransport struct {
	n     *atomic.Int64
	match func(*http.Request) bool
	next  http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.match == nil || c.match(r) {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// serveTLSOn completes handshakes on ln (the CA's validation handshakes
// included) until the test ends.
func serveTLSOn(t *testing.T, ln net.Listener) {
	testkit.ServeConns(t, ln, 90*time.Second, func(c net.Conn) {
		if c.(*tls.Conn).Handshake() == nil {
			_, _ = c.Read(make([]byte, 1))
		}
	})
}

func serveHTTPOn(t *testing.T, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}
