package tlsstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// FleetACMEOptions configure FleetACME. Storage and HostAllowed are needed
// in production; DirectoryURL and Roots point it at a test CA.
type FleetACMEOptions struct {
	// Storage is the state every edge of the fleet shares (the control
	// plane's, through fleet.Client): the ACME account, certificates and
	// keys, the locks that make one edge order for all, and the pending
	// challenges any edge answers. Required.
	Storage certmagic.Storage
	// DirectoryURL is the CA's directory. If empty, Let's Encrypt's
	// production directory. Enabling ACME accepts the CA's terms of service.
	DirectoryURL string
	// Email is the account contact. Optional.
	Email string
	// Roots are the CA roots for talking to the directory (a private or
	// test CA). If nil, the system roots.
	Roots *x509.CertPool
	// HTTPPort and TLSPort are the edge's ports the CA validates on: the
	// HTTP-01 and TLS-ALPN-01 challenges are answered by the edge's own
	// listeners on them. If zero, 80 and 443.
	HTTPPort, TLSPort int
	// HostAllowed is as ACMEOptions.HostAllowed: only these hosts get
	// certificates. If nil, no host is allowed.
	HostAllowed func(host string) bool
	// Logger receives issuance, renewal and OCSP logs (never a key). If
	// nil, nothing is logged.
	Logger *zap.Logger
	// Registerer receives the metrics ACME has. If nil, they are not
	// registered.
	Registerer prometheus.Registerer
}

// FleetACME obtains, renews and staples OCSP for the certificates of the
// hosts HostAllowed accepts with github.com/caddyserver/certmagic, on a
// Storage the whole fleet shares: the first handshake for a host on any edge
// takes the host's lock and orders once for all; the others find the
// certificate in the storage; a validation request reaches whichever edge
// the CA connects to, which finds the challenge in the storage; renewal
// happens once, by the edge that takes the lock.
type FleetACME struct {
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	allowed func(string) bool
	log     *zap.Logger
	metrics *acmeMetrics
	expiry  sync.Map // host -> time.Time: the NotAfter last put in the gauge
}

// NewFleetACME returns a FleetACME for o. It contacts the CA only when a
// host needs a certificate that the storage does not have. Close stops its
// maintenance (renewals, OCSP).
func NewFleetACME(o FleetACMEOptions) (*FleetACME, error) {
	if o.Storage == nil {
		return nil, errors.New("tlsstore: fleet acme: no storage")
	}
	if o.DirectoryURL == "" {
		o.DirectoryURL = certmagic.LetsEncryptProductionCA
	}
	if o.HostAllowed == nil {
		o.HostAllowed = func(string) bool { return false }
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = 80
	}
	if o.TLSPort == 0 {
		o.TLSPort = 443
	}
	a := &FleetACME{allowed: o.HostAllowed, log: o.Logger, metrics: newACMEMetrics(o.Registerer)}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.cfg, nil },
		Logger:           o.Logger.Named("cache"),
	})
	a.cfg = certmagic.New(a.cache, certmagic.Config{
		Storage: o.Storage,
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: func(_ context.Context, name string) error {
			return a.policy(name)
		}},
		OnEvent: a.event,
		Logger:  o.Logger,
	})
	a.issuer = certmagic.NewACMEIssuer(a.cfg, certmagic.ACMEIssuer{
		CA:     o.DirectoryURL,
		TestCA: o.DirectoryURL, // no retry against staging: one directory, one account
		Email:  o.Email,
		Agreed: true,
		// The edge's own listeners hold the ports: certmagic's solvers see
		// them taken and leave the answers to GetCertificate and
		// HTTPHandler, on this edge or, through the storage, any other.
		AltHTTPPort:    o.HTTPPort,
		AltTLSALPNPort: o.TLSPort,
		TrustedRoots:   o.Roots,
		Logger:         o.Logger.Named("issuer"),
	})
	a.cfg.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// Close stops the renewal and OCSP maintenance.
func (a *FleetACME) Close() { a.cache.Stop() }

// Allowed reports whether host may get an ACME certificate.
func (a *FleetACME) Allowed(host string) bool {
	h := normalizeHost(host)
	return h != "" && a.allowed(h)
}

func (a *FleetACME) policy(host string) error {
	if !a.Allowed(host) {
		a.metrics.refused.Inc()
		return fmt.Errorf("tlsstore: acme: host %q is not served with tls=auto", normalizeHost(host))
	}
	return nil
}

// event counts the certificates this edge obtained (orders and renewals).
func (a *FleetACME) event(_ context.Context, name string, data map[string]any) error {
	if name == "cert_obtained" {
		a.metrics.obtained.Inc()
	}
	return nil
}

// GetCertificate returns the host's certificate: from memory, else from
// the shared storage, else ordered (the handshake waits for the CA, or for
// the edge that holds the host's lock). It answers TLS-ALPN-01 validation
// handshakes, for orders of any edge.
func (a *FleetACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if isACMEChallenge(hello) {
		return a.cfg.GetCertificate(hello)
	}
	host := normalizeHost(hello.ServerName)
	if err := a.policy(host); err != nil {
		return nil, err
	}
	cert, err := a.cfg.GetCertificate(hello)
	if err != nil {
		a.metrics.errors.WithLabelValues(host).Inc()
		a.log.Warn("no ACME certificate", zap.String("host", host), zap.Error(err))
		return nil, fmt.Errorf("tlsstore: acme: certificate for %q: %w", host, err)
	}
	if cert.Leaf != nil {
		if t, ok := a.expiry.Load(host); !ok || !t.(time.Time).Equal(cert.Leaf.NotAfter) {
			a.expiry.Store(host, cert.Leaf.NotAfter)
			a.metrics.expiry.WithLabelValues(host).Set(float64(cert.Leaf.NotAfter.Unix()))
		}
	}
	return cert, nil
}

// HTTPHandler answers HTTP-01 challenges (of any edge's orders) for allowed
// hosts and passes every other request to fallback. A challenge request for
// a host outside the policy gets 403.
func (a *FleetACME) HTTPHandler(fallback http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			if err := a.policy(r.Host); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			if a.issuer.HandleHTTPChallenge(w, r) {
				return
			}
		}
		fallback.ServeHTTP(w, r)
	})
}
