package tlsstore

import (
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// serveGreeting accepts TLS connections, writes one byte after the
// handshake (so that TLS 1.3 clients read the session tickets sent before
// it) and waits for the client to close.
func serveGreeting(t *testing.T, cfg *tls.Config) string {
	return serveTLS(t, cfg, func(c *tls.Conn) {
		if _, err := c.Write([]byte("x")); err != nil {
			return // failed handshake; the client reports it
		}
		_, _ = io.Copy(io.Discard, c)
	})
}

func dialGreeting(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.(*tls.Conn).ConnectionState(), nil
}

func TestServerConfigProtocols(t *testing.T) {
	ca := testkit.NewCA(t, "ca")
	ec := ca.Issue(t, "app.example.org")
	rs := issueKey(t, ca, rsaPKCS8, "rsa.example.org")
	ecCert, err := parseCertificate(ec.CertPEM, ec.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	rsCert, err := parseCertificate(rs.CertPEM, rs.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	get := func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if h.ServerName == "rsa.example.org" {
			return rsCert, nil
		}
		return ecCert, nil
	}
	plain := serveGreeting(t, ServerConfig(get, ConfigOptions{}))
	withACME := serveGreeting(t, ServerConfig(get, ConfigOptions{ACME: true}))
	tls12 := func(suites ...uint16) *tls.Config {
		return &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: suites}
	}
	tests := []struct {
		name      string
		addr      string
		sni       string // default app.example.org
		cfg       *tls.Config
		wantErr   bool
		wantVer   uint16
		wantSuite uint16 // 0 = not checked
		wantCurve tls.CurveID
		wantALPN  string
	}{
		{name: "TLS 1.3 default client", addr: plain, cfg: &tls.Config{}, wantVer: tls.VersionTLS13},
		{name: "TLS 1.3 negotiates h2", addr: plain, cfg: &tls.Config{NextProtos: []string{"h2", "http/1.1"}}, wantVer: tls.VersionTLS13, wantALPN: "h2"},
		{name: "http/1.1 only", addr: plain, cfg: &tls.Config{NextProtos: []string{"http/1.1"}}, wantVer: tls.VersionTLS13, wantALPN: "http/1.1"},
		{name: "X25519 only", addr: plain, cfg: &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}, wantVer: tls.VersionTLS13, wantCurve: tls.X25519},
		{name: "P-256 only", addr: plain, cfg: &tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP256}}, wantVer: tls.VersionTLS13, wantCurve: tls.CurveP256},
		{name: "P-384 only refused", addr: plain, cfg: &tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP384}}, wantErr: true},
		{name: "TLS 1.2 ECDHE-ECDSA AES-128-GCM", addr: plain, cfg: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
			wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2 ECDHE-ECDSA ChaCha20", addr: plain, cfg: tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
			wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "TLS 1.2 ECDHE-RSA AES-256-GCM", addr: plain, sni: "rsa.example.org", cfg: tls12(tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
			wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{name: "TLS 1.2 CBC refused", addr: plain, cfg: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA), wantErr: true},
		{name: "TLS 1.2 static RSA refused", addr: plain, sni: "rsa.example.org", cfg: tls12(tls.TLS_RSA_WITH_AES_128_GCM_SHA256), wantErr: true},
		{name: "TLS 1.1 refused", addr: plain, cfg: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, wantErr: true},
		{name: "acme-tls/1 refused without ACME", addr: plain, cfg: &tls.Config{NextProtos: []string{"acme-tls/1"}}, wantErr: true},
		{name: "acme-tls/1 with ACME", addr: withACME, cfg: &tls.Config{NextProtos: []string{"acme-tls/1"}}, wantVer: tls.VersionTLS13, wantALPN: "acme-tls/1"},
		{name: "h2 with ACME", addr: withACME, cfg: &tls.Config{NextProtos: []string{"h2"}}, wantVer: tls.VersionTLS13, wantALPN: "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg.Clone()
			cfg.RootCAs = ca.Pool
			cfg.ServerName = "app.example.org"
			if tt.sni != "" {
				cfg.ServerName = tt.sni
			}
			cs, err := dialGreeting(tt.addr, cfg)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("handshake succeeded (version %x, suite %s), want failure", cs.Version, tls.CipherSuiteName(cs.CipherSuite))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cs.Version != tt.wantVer {
				t.Errorf("version %x, want %x", cs.Version, tt.wantVer)
			}
			if tt.wantSuite != 0 && cs.CipherSuite != tt.wantSuite {
				t.Errorf("suite %s, want %s", tls.CipherSuiteName(cs.CipherSuite), tls.CipherSuiteName(tt.wantSuite))
			}
			if tt.wantCurve != 0 && cs.CurveID != tt.wantCurve {
				t.Errorf("curve %v, want %v", cs.CurveID, tt.wantCurve)
			}
			if cs.NegotiatedProtocol != tt.wantALPN {
				t.Errorf("ALPN %q, want %q", cs.NegotiatedProtocol, tt.wantALPN)
			}
		})
	}
}

// appCert returns a CA and a GetCertificate that serves its certificate
// for app.example.org.
func appCert(t *testing.T) (*testkit.CA, func(*tls.ClientHelloInfo) (*tls.Certificate, error)) {
	ca := testkit.NewCA(t, "ca")
	l := ca.Issue(t, "app.example.org")
	cert, err := parseCertificate(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
}

func TestSessionTicketRotation(t *testing.T) {
	ca, get := appCert(t)
	const period = time.Hour
	clock := testkit.NewClock()
	cfg := ServerConfig(get, ConfigOptions{TicketRotation: period, Now: clock.Now})
	// net/http clones the config; the rotation must work on the clone.
	addr := serveGreeting(t, cfg.Clone())
	tests := []struct {
		name       string
		later      time.Duration // between the full handshake and the resumption attempt
		wantResume bool
	}{
		{"at once", 0, true},
		{"next period", period, true},
		{"last moment of the third period", ticketKeyPeriods*period - time.Second, true},
		{"key retired", ticketKeyPeriods * period, false},
		{"long idle", 100 * period, false},
	}
	for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tt := range tests {
			t.Run(tls.VersionName(ver)+"/"+tt.name, func(t *testing.T) {
				client := &tls.Config{RootCAs: ca.Pool, ServerName: "app.example.org", MaxVersion: ver,
					ClientSessionCache: tls.NewLRUClientSessionCache(4)}
				cs, err := dialGreeting(addr, client)
				if err != nil {
					t.Fatal(err)
				}
				if cs.DidResume {
					t.Fatal("first handshake resumed")
				}
				clock.Advance(tt.later)
				cs, err = dialGreeting(addr, client)
				if err != nil {
					t.Fatalf("second handshake: %v", err)
				}
				if cs.DidResume != tt.wantResume {
					t.Fatalf("resumed = %v, want %v", cs.DidResume, tt.wantResume)
				}
			})
		}
	}
}

// TestFleetTickets: two edges holding the fleet's keys (each its own
// TicketKeys, set from the same list) resume each other's sessions over
// TLS 1.2 and 1.3; a key published ahead seals only from its From; an edge
// without the fleet's keys resumes nothing of theirs; once every fleet key
// is retired, an edge falls back to its own keys.
func TestFleetTickets(t *testing.T) {
	ca, get := appCert(t)
	clock := testkit.NewClock()
	now := clock.Now()
	keys := []TicketKey{
		{Secret: [32]byte{1}, From: now.Add(-time.Hour), Until: now.Add(24 * time.Hour)},
		{Secret: [32]byte{2}, From: now.Add(10 * time.Minute), Until: now.Add(36 * time.Hour)}, // published ahead
	}
	edge := func(keys []TicketKey) string {
		var tk TicketKeys
		if err := tk.Set(keys); err != nil {
			t.Fatal(err)
		}
		return serveGreeting(t, ServerConfig(get, ConfigOptions{Now: clock.Now, Tickets: &tk}).Clone())
	}
	a, b, alone := edge(keys), edge(keys), edge(nil)
	for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(ver), func(t *testing.T) {
			resumes := func(issuer, other string) bool {
				t.Helper()
				client := &tls.Config{RootCAs: ca.Pool, ServerName: "app.example.org", MaxVersion: ver,
					ClientSessionCache: tls.NewLRUClientSessionCache(4)}
				if cs, err := dialGreeting(issuer, client); err != nil || cs.DidResume {
					t.Fatalf("first handshake: resumed %v, %v", cs.DidResume, err)
				}
				cs, err := dialGreeting(other, client)
				if err != nil {
					t.Fatalf("second handshake: %v", err)
				}
				return cs.DidResume
			}
			if !resumes(a, b) || !resumes(b, a) {
				t.Fatal("a session from one fleet edge did not resume on the other")
			}
			if resumes(a, alone) || resumes(alone, a) {
				t.Fatal("a session resumed between a fleet edge and one without the fleet's keys")
			}
		})
	}
	var tk TicketKeys
	tk.Set(keys)
	if ks, ok := tk.inForce(now); !ok || ks[0].from != keys[1].From {
		t.Fatal("keys not newest first")
	}
	if _, ok := tk.inForce(now.Add(37 * time.Hour)); ok {
		t.Fatal("retired fleet keys still in force")
	}
}

func TestTicketRing(t *testing.T) {
	clock := testkit.NewClock()
	r := &ticketRing{period: time.Hour, now: clock.Now, rand: rand.Reader}
	ss := sessionState(t)
	ticket, err := r.wrap(tls.ConnectionState{}, ss)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), ticket...)
	tampered[len(tampered)-1] ^= 1
	unknown := append([]byte(nil), ticket...)
	unknown[0] ^= 1
	for name, identity := range map[string][]byte{
		"empty":       nil,
		"short":       ticket[:10],
		"tampered":    tampered,
		"unknown key": unknown,
	} {
		got, err := r.unwrap(identity, tls.ConnectionState{})
		if got != nil || err != nil {
			t.Errorf("%s: unwrap = %v, %v; want nil, nil (full handshake)", name, got, err)
		}
	}
	if got, err := r.unwrap(ticket, tls.ConnectionState{}); got == nil || err != nil {
		t.Fatalf("unwrap of a good ticket = %v, %v", got, err)
	}
	// The ring never holds more keys than can still decrypt.
	for range 10 {
		clock.Advance(time.Hour)
		if _, err := r.wrap(tls.ConnectionState{}, ss); err != nil {
			t.Fatal(err)
		}
		if n := len(*r.keys.Load()); n > ticketKeyPeriods {
			t.Fatalf("%d keys kept, want at most %d", n, ticketKeyPeriods)
		}
	}
}

// sessionState obtains a real SessionState from a TLS 1.3 handshake over a
// pipe, since crypto/tls offers no constructor.
func sessionState(t *testing.T) *tls.SessionState {
	t.Helper()
	ca := testkit.NewCA(t, "ca")
	l := ca.Issue(t, "app.example.org")
	cert, err := parseCertificate(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Pointer[tls.SessionState]
	srvCfg := &tls.Config{Certificates: []tls.Certificate{*cert},
		WrapSession: func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			got.Store(ss)
			return []byte("opaque"), nil
		}}
	a, b := net.Pipe()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		defer a.Close()
		s := tls.Server(a, srvCfg)
		if s.Handshake() == nil {
			_, _ = s.Write([]byte("x"))
		}
	})
	c := tls.Client(b, &tls.Config{RootCAs: ca.Pool, ServerName: "app.example.org", ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if got.Load() == nil {
		t.Fatal("no session state captured")
	}
	return got.Load()
}
