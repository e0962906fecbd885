// Package tlsstore serves TLS certificates to the edge: certificates loaded
// from a directory of PEM files (Docker secrets), reloaded without a
// restart, and chosen by SNI; ACME certificates for tls=auto routes; and the
// server tls.Config that both plug into.
//
// It knows nothing of routes: callers pass small callbacks (the certificate
// name a host's route asks for, whether a host may get an ACME certificate)
// that read the live routing table.
package tlsstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Options configure a Store. The zero value reads /run/secrets every two
// seconds and serves no fallback certificate.
type Options struct {
	// Dir is the certificate directory. If empty, /run/secrets, where
	// Docker secrets attached to the edge service appear.
	Dir string
	// Poll is how often Run re-reads Dir. If zero, 2s. Polling (rather than
	// inotify) sees secret and symlink swaps on every file system.
	Poll time.Duration
	// Fallback serves a generated self-signed certificate when nothing else
	// matches, so that clients get a certificate error instead of a
	// handshake failure. Off unless the operator asks for it.
	Fallback bool
	// Default names the certificate served when no SAN or route matches.
	// If empty, there is none.
	Default string
	// RouteCert returns the certificate name that the route owning host
	// asks for (swarmgate.tls=NAME, Interlock's ssl_cert). It is called on
	// handshakes whose SNI no certificate SAN matches, so it must be fast
	// and safe for concurrent use. If nil, no route names certificates.
	RouteCert func(host string) (name string, ok bool)
	// Logger receives load errors and reloads, under the name the caller
	// gave it. If nil, nothing is logged.
	Logger *zap.Logger
	// Registerer receives the metrics. If nil, they are not registered.
	// Registering them twice on one registry panics (a wiring mistake).
	Registerer prometheus.Registerer
	// Now is the clock for the fallback certificate and OCSP staples. If
	// nil, time.Now.
	Now func() time.Time
	// OCSPClient fetches the OCSP responses Run staples to the
	// certificates that name a responder (and carry their issuer). If nil,
	// one with a 10s timeout.
	OCSPClient *http.Client
}

// Store holds the certificates of a directory: NAME.crt (or NAME.cert) +
// NAME.key, or one NAME.pem holding both. A changed file is parsed and
// swapped in atomically; a file that fails to load is logged and counted,
// and the previous certificate of that name stays in use. Certificates are
// indexed by their DNS SANs (the CN when there is none) for SNI selection.
//
// The handshake path reads one atomic snapshot and takes no lock.
type Store struct {
	dir       string
	poll      time.Duration
	def       string
	routeCert func(string) (string, bool)
	log       *zap.Logger
	metrics   *storeMetrics
	now       func() time.Time

	snap     atomic.Pointer[snapshot]
	fallback atomic.Pointer[tls.Certificate] // nil unless Options.Fallback

	// mu serializes reloads and guards bad.
	mu sync.Mutex
	// bad remembers the content that last failed to load for each name,
	// so an unchanged bad file is logged and counted once, not every poll.
	bad map[string][sha256.Size]byte

	ocspClient *http.Client
	ocsp       map[string]ocspState // Run's alone
}

// entry is one loaded certificate.
type entry struct {
	name  string
	cert  *tls.Certificate
	hosts []string
	hash  [sha256.Size]byte
}

// snapshot is an immutable view of the directory.
type snapshot struct {
	byName map[string]*entry
	exact  map[string]*entry // SAN -> certificate
	wild   map[string]*entry // "example.org" for a "*.example.org" SAN
}

// New loads Dir once. An unreadable directory is an error; a certificate
// that fails to load is logged and counted and the others are served.
func New(o Options) (*Store, error) {
	if o.Dir == "" {
		o.Dir = "/run/secrets"
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{
		dir:       o.Dir,
		poll:      o.Poll,
		def:       o.Default,
		routeCert: o.RouteCert,
		log:       o.Logger,
		metrics:   newStoreMetrics(o.Registerer),
		now:       o.Now,
		bad:       map[string][sha256.Size]byte{},

		ocspClient: o.OCSPClient,
		ocsp:       map[string]ocspState{},
	}
	if s.ocspClient == nil {
		s.ocspClient = &http.Client{Timeout: 10 * time.Second}
	}
	s.snap.Store(&snapshot{})
	if o.Fallback {
		fb, err := selfSigned(o.Now())
		if err != nil {
			return nil, err
		}
		s.fallback.Store(fb)
	}
	if err := s.reload(); errors.Is(err, errDir) {
		return nil, err
	}
	if s.def != "" {
		if _, ok := s.Lookup(s.def); !ok {
			s.log.Warn("default certificate not loaded", zap.String("name", s.def))
		}
	}
	return s, nil
}

// Run re-reads the directory every Poll, and staples OCSP responses to the
// certificates that name a responder, until ctx is done.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	s.staple(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.Reload() // logged and counted inside
			s.staple(ctx)
		}
	}
}

// errDir marks a reload error about the directory itself.
var errDir = errors.New("certificate directory unreadable")

// Reload re-reads the directory now (Run does so on every tick; a SIGHUP
// handler may call it too). The error lists the certificates that failed
// to load in this pass; their previous versions stay in use. A bad file
// that has not changed since it last failed is not reported again.
func (s *Store) Reload() error { return s.reload() }

func (s *Store) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshFallbackLocked()
	srcs, err := scanDir(s.dir)
	if err != nil {
		s.metrics.reloadErrors.WithLabelValues("").Inc()
		s.log.Error("reading certificate directory; keeping the loaded certificates", zap.String("dir", s.dir), zap.Error(err))
		return fmt.Errorf("%w: %w", errDir, err)
	}
	old := s.snap.Load()
	next := make(map[string]*entry, len(srcs))
	var errs []error
	changed := false
	for name, src := range srcs {
		prev := old.byName[name]
		fail := func(err error) {
			if prev != nil {
				next[name] = prev
			}
			s.metrics.reloadErrors.WithLabelValues(name).Inc()
			s.log.Error("loading certificate; keeping the previous one if any",
				zap.String("name", name), zap.String("files", src.files()),
				zap.Bool("previous_kept", prev != nil), zap.Error(err))
			errs = append(errs, fmt.Errorf("tlsstore: certificate %q (%s): %w", name, src.files(), err))
		}
		certPEM, keyPEM, err := src.read()
		var h [sha256.Size]byte
		if err != nil {
			// A read failure counts as bad content named by its error,
			// so a missing .key is reported once, not every poll.
			h = sha256.Sum256([]byte(err.Error()))
		} else {
			h = fingerprint(certPEM, keyPEM)
		}
		if prev != nil && prev.hash == h {
			next[name] = prev
			continue
		}
		if bad, ok := s.bad[name]; ok && bad == h {
			if prev != nil {
				next[name] = prev
			}
			continue
		}
		var cert *tls.Certificate
		if err == nil {
			cert, err = parseCertificate(certPEM, keyPEM)
		}
		if err != nil {
			s.bad[name] = h
			fail(err)
			continue
		}
		delete(s.bad, name)
		e := &entry{name: name, cert: cert, hosts: certNames(cert.Leaf), hash: h}
		next[name] = e
		changed = true
		s.metrics.expiry.WithLabelValues(name).Set(float64(cert.Leaf.NotAfter.Unix()))
		s.log.Info("certificate loaded", zap.String("name", name), zap.String("files", src.files()),
			zap.Strings("hosts", e.hosts), zap.Time("not_after", cert.Leaf.NotAfter), zap.Bool("replaced", prev != nil))
	}
	for name := range old.byName {
		if _, ok := next[name]; !ok {
			changed = true
			s.metrics.expiry.DeleteLabelValues(name)
			s.log.Info("certificate removed", zap.String("name", name))
		}
	}
	for name := range s.bad {
		if _, ok := srcs[name]; !ok {
			delete(s.bad, name)
		}
	}
	if changed {
		s.snap.Store(index(next))
	}
	return errors.Join(errs...)
}

// index builds the SNI maps. When two certificates claim the same name,
// the one that expires last wins (a renewed certificate next to the old
// one), then the smaller certificate name, so the choice is stable.
func index(byName map[string]*entry) *snapshot {
	s := &snapshot{byName: byName, exact: map[string]*entry{}, wild: map[string]*entry{}}
	better := func(a, b *entry) bool {
		if !a.cert.Leaf.NotAfter.Equal(b.cert.Leaf.NotAfter) {
			return a.cert.Leaf.NotAfter.After(b.cert.Leaf.NotAfter)
		}
		return a.name < b.name
	}
	for _, e := range byName {
		for _, h := range e.hosts {
			m, key := s.exact, h
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				// RFC 6125 6.4.3: the wildcard stands for exactly one
				// left-most label; "*.org"-style wildcards are ignored.
				if !strings.Contains(rest, ".") {
					continue
				}
				m, key = s.wild, rest
			}
			if cur, ok := m[key]; !ok || better(e, cur) {
				m[key] = e
			}
		}
	}
	return s
}

// Lookup returns the certificate named name (swarmgate.tls=NAME, or the
// name Interlock's ssl_cert label maps to).
func (s *Store) Lookup(name string) (*tls.Certificate, bool) {
	if e := s.snap.Load().byName[name]; e != nil {
		return e.cert, true
	}
	return nil, false
}

// Names returns the loaded certificate names, sorted.
func (s *Store) Names() []string {
	snap := s.snap.Load()
	out := make([]string, 0, len(snap.byName))
	for n := range snap.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// GetCertificate picks the certificate for a ClientHello, in this order:
// a SAN equal to the server name; a wildcard SAN covering it (one label,
// RFC 6125); the certificate named by the route that owns the host
// (Options.RouteCert); the Default certificate; the self-signed fallback if
// enabled. Otherwise it fails the handshake. Server names compare without
// case and without a trailing dot.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	snap := s.snap.Load()
	host := normalizeHost(hello.ServerName)
	if host != "" {
		if e := snap.exact[host]; e != nil {
			return e.cert, nil
		}
		if i := strings.IndexByte(host, '.'); i > 0 {
			if e := snap.wild[host[i+1:]]; e != nil {
				return e.cert, nil
			}
		}
		if s.routeCert != nil {
			if name, ok := s.routeCert(host); ok {
				if e := snap.byName[name]; e != nil {
					return e.cert, nil
				}
			}
		}
	}
	if s.def != "" {
		if e := snap.byName[s.def]; e != nil {
			return e.cert, nil
		}
	}
	if fb := s.fallback.Load(); fb != nil {
		return fb, nil
	}
	return nil, fmt.Errorf("tlsstore: no certificate for server name %q", host)
}

// fallbackLifetime is the validity of the self-signed fallback; it is
// replaced on a reload once less than fallbackRenew of it is left.
const (
	fallbackLifetime = 365 * 24 * time.Hour
	fallbackRenew    = 30 * 24 * time.Hour
)

func (s *Store) refreshFallbackLocked() {
	fb := s.fallback.Load()
	if fb == nil || s.now().Before(fb.Leaf.NotAfter.Add(-fallbackRenew)) {
		return
	}
	next, err := selfSigned(s.now())
	if err != nil {
		s.log.Error("renewing the fallback certificate", zap.Error(err))
		return
	}
	s.fallback.Store(next)
}

// selfSigned makes the fallback certificate: ECDSA P-256, no SAN, so that
// no client mistakes it for a real one.
func selfSigned(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsstore: fallback key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlsstore: fallback serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "swarmgate fallback certificate"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(fallbackLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsstore: fallback certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsstore: fallback certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
