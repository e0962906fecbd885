package tlsstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACMEOptions configure ACME. Only HostAllowed is needed in production;
// DirectoryURL and HTTPClient point it at a test CA such as Pebble.
type ACMEOptions struct {
	// DirectoryURL is the CA's directory. If empty, Let's Encrypt's
	// production directory. Enabling ACME accepts the CA's terms of service.
	DirectoryURL string
	// Email is the account contact the CA writes to about expiring or
	// revoked certificates. Optional.
	Email string
	// CacheDir keeps the account key and the certificates across restarts
	// (a volume). If empty, they live in memory only, and every restart
	// orders new certificates: CAs rate-limit that.
	CacheDir string
	// HTTPClient talks to the CA, e.g. with the CA's roots for a private
	// or test CA. If nil, http.DefaultClient.
	HTTPClient *http.Client
	// RenewBefore is how long before expiry a certificate is renewed. If
	// zero, autocert's default: the lesser of 30 days and a third of the
	// certificate's lifetime.
	RenewBefore time.Duration
	// HostAllowed reports whether host (lower case, no port, no trailing
	// dot) is published by a route with tls=auto; only those get
	// certificates. It is called on handshakes and must be fast. If nil, no
	// host is allowed.
	HostAllowed func(host string) bool
	// Logger receives issuance errors, under the name the caller gave it.
	// If nil, nothing is logged.
	Logger *zap.Logger
	// Registerer receives the metrics. If nil, they are not registered.
	// Registering them twice on one registry panics (a wiring mistake).
	Registerer prometheus.Registerer
}

// ACME obtains and renews certificates with golang.org/x/crypto/acme/autocert
// for the hosts HostAllowed accepts, over TLS-ALPN-01 (GetCertificate on
// :443) and HTTP-01 (HTTPHandler on :80).
type ACME struct {
	m       *autocert.Manager
	allowed func(string) bool
	log     *zap.Logger
	metrics *acmeMetrics
}

// NewACME returns an ACME for o. It contacts the CA only when a handshake
// for an allowed host needs a certificate. The error is always nil: the
// only one it had, a metric registration error, is now a panic; the
// signature stays for the callers that check it.
func NewACME(o ACMEOptions) (*ACME, error) {
	if o.DirectoryURL == "" {
		o.DirectoryURL = autocert.DefaultACMEDirectory
	}
	if o.HostAllowed == nil {
		o.HostAllowed = func(string) bool { return false }
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	m := newACMEMetrics(o.Registerer)
	a := &ACME{allowed: o.HostAllowed, log: o.Logger, metrics: m}
	c := &metricCache{expiry: m.expiry, obtained: m.obtained}
	if o.CacheDir != "" {
		c.inner = autocert.DirCache(o.CacheDir)
	}
	a.m = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       c,
		HostPolicy:  a.policy,
		RenewBefore: o.RenewBefore,
		Client:      &acme.Client{DirectoryURL: o.DirectoryURL, HTTPClient: o.HTTPClient, UserAgent: "swarmgate"},
		Email:       o.Email,
	}
	return a, nil
}

// Allowed reports whether host may get an ACME certificate.
func (a *ACME) Allowed(host string) bool {
	h := normalizeHost(host)
	return h != "" && a.allowed(h)
}

// policy is autocert's HostPolicy. It also guards the HTTP-01 handler,
// whose Host carries a port when the CA validates on a non-default one.
func (a *ACME) policy(_ context.Context, host string) error {
	if !a.Allowed(host) {
		a.metrics.refused.Inc()
		return fmt.Errorf("tlsstore: acme: host %q is not served with tls=auto", normalizeHost(host))
	}
	return nil
}

// GetCertificate returns the host's ACME certificate, ordering it first if
// needed (the handshake waits for the CA), and answers the CA's
// TLS-ALPN-01 validation handshakes. Server names HostAllowed refuses fail
// before any request to the CA.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if isACMEChallenge(hello) {
		return a.m.GetCertificate(hello)
	}
	host := normalizeHost(hello.ServerName)
	if !a.Allowed(host) {
		return nil, a.policy(context.Background(), host)
	}
	cert, err := a.m.GetCertificate(hello)
	if err != nil {
		a.metrics.errors.WithLabelValues(host).Inc()
		a.log.Warn("no ACME certificate", zap.String("host", host), zap.Error(err))
		return nil, fmt.Errorf("tlsstore: acme: certificate for %q: %w", host, err)
	}
	return cert, nil
}

// HTTPHandler answers HTTP-01 challenges for allowed hosts under
// /.well-known/acme-challenge/ and passes every other request to fallback
// (if nil, a redirect to HTTPS). Serve it on :80.
func (a *ACME) HTTPHandler(fallback http.Handler) http.Handler {
	return a.m.HTTPHandler(fallback)
}

// isACMEChallenge reports a TLS-ALPN-01 validation handshake (RFC 8737):
// the CA offers acme-tls/1 and nothing else.
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
}

// ACMESource is what the edge asks for ACME certificates and challenge
// answers: ACME (one edge, its own cache) or FleetACME (the fleet's shared
// state).
type ACMESource interface {
	Allowed(host string) bool
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	HTTPHandler(fallback http.Handler) http.Handler
}

var (
	_ ACMESource = (*ACME)(nil)
	_ ACMESource = (*FleetACME)(nil)
)

// Combine returns the GetCertificate of the edge's TLS listener: ACME's for
// TLS-ALPN-01 validations and for the hosts acme allows, the store's order
// for the rest. When ACME has no certificate for an allowed host (the CA is
// down), the store is asked as well, so a wildcard or default certificate
// still serves; if it has none either, the ACME error is returned. acme may
// be nil (an untyped nil).
func Combine(store *Store, a ACMESource) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if a == nil {
			return store.GetCertificate(hello)
		}
		if isACMEChallenge(hello) {
			return a.GetCertificate(hello)
		}
		if !a.Allowed(hello.ServerName) {
			return store.GetCertificate(hello)
		}
		cert, err := a.GetCertificate(hello)
		if err == nil {
			return cert, nil
		}
		if c, serr := store.GetCertificate(hello); serr == nil {
			return c, nil
		}
		return nil, err
	}
}

// metricCache wraps autocert's cache to observe every certificate it
// stores (issued or renewed) or reads, for the expiry gauge. autocert has
// no other hook for renewals. With a nil inner cache nothing persists.
type metricCache struct {
	inner    autocert.Cache
	expiry   *prometheus.GaugeVec
	obtained prometheus.Counter
}

func (c *metricCache) Get(ctx context.Context, key string) ([]byte, error) {
	if c.inner == nil {
		return nil, autocert.ErrCacheMiss
	}
	data, err := c.inner.Get(ctx, key)
	if err == nil {
		c.observe(key, data)
	}
	return data, err
}

func (c *metricCache) Put(ctx context.Context, key string, data []byte) error {
	if c.observe(key, data) {
		c.obtained.Inc() // autocert puts a certificate when it issued or renewed it
	}
	if c.inner == nil {
		return nil
	}
	return c.inner.Put(ctx, key, data)
}

func (c *metricCache) Delete(ctx context.Context, key string) error {
	if c.inner == nil {
		return nil
	}
	return c.inner.Delete(ctx, key)
}

// observe sets the expiry of the host's certificate and reports whether
// data held one. autocert's keys are the bare host for the ECDSA
// certificate; keys with a "+" (the RSA certificate for old clients,
// challenge tokens, the account key) are not tracked.
func (c *metricCache) observe(key string, data []byte) bool {
	if strings.Contains(key, "+") {
		return false
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return false
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(b.Bytes)
		if err == nil {
			c.expiry.WithLabelValues(key).Set(float64(leaf.NotAfter.Unix()))
		}
		return err == nil
	}
}

var _ autocert.Cache = (*metricCache)(nil)
