package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/tlsstore"
)

// TLSOptions configure the HTTPS listener's certificates.
type TLSOptions struct {
	Certs       string // certificate directory (Docker secrets appear in /run/secrets)
	DefaultCert string // certificate served when nothing else matches the server name
	SelfSigned  bool   // serve a generated self-signed certificate when nothing else matches

	ACME          bool   // certificates from ACME for routes labelled swarmgate.tls=auto
	ACMEEmail     string // account contact
	ACMEDirectory string // directory URL; "": Let's Encrypt production
	ACMECache     string // account and certificate cache directory
	ACMECA        string // PEM file of CA roots for the ACME directory (a private or test CA)
}

// tlsSetup holds what serves HTTPS: the certificate store, ACME, and the
// listener configuration.
type tlsSetup struct {
	config *tls.Config
	acme   *tlsstore.ACME
	store  *tlsstore.Store
}

// newTLS builds the certificate selection for the HTTPS listener: the
// certificate directory (if it exists), ACME for tls=auto routes, and the
// route certificates of the snapshot in force. With no certificate source at
// all, the listener still routes SNI passthrough and fails other handshakes.
func newTLS(ctx context.Context, o TLSOptions, e *Edge, log *zap.Logger, reg prometheus.Registerer) (*tlsSetup, error) {
	s := &tlsSetup{}
	if _, err := os.Stat(o.Certs); o.Certs != "" && err == nil {
		store, err := tlsstore.New(tlsstore.Options{
			Dir:        o.Certs,
			Fallback:   o.SelfSigned,
			Default:    o.DefaultCert,
			RouteCert:  func(host string) (string, bool) { return e.Snapshot().CertFor(host) },
			Logger:     log.Named("tlsstore"),
			Registerer: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("edge: --certs: %w", err)
		}
		go store.Run(ctx)
		s.store = store
	} else if o.SelfSigned {
		return nil, fmt.Errorf("edge: --self-signed needs a certificate directory: %w", err)
	} else {
		log.Info("no certificate directory; only ACME certificates are served", zap.String("certs", o.Certs))
	}
	if o.ACME {
		var client *http.Client
		if o.ACMECA != "" {
			pem, err := os.ReadFile(o.ACMECA)
			if err != nil {
				return nil, fmt.Errorf("edge: --acme-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New("edge: --acme-ca: no certificate in the file")
			}
			client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			}}
		}
		a, err := tlsstore.NewACME(tlsstore.ACMEOptions{
			DirectoryURL: o.ACMEDirectory,
			Email:        o.ACMEEmail,
			CacheDir:     o.ACMECache,
			HTTPClient:   client,
			HostAllowed:  func(host string) bool { return e.Snapshot().ACMEHost(host) },
			Logger:       log.Named("acme"),
			Registerer:   reg,
		})
		if err != nil {
			return nil, fmt.Errorf("edge: --acme: %w", err)
		}
		s.acme = a
	}
	var get func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	switch {
	case s.store != nil:
		get = tlsstore.Combine(s.store, s.acme)
	case s.acme != nil:
		get = s.acme.GetCertificate
	default:
		get = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return nil, errors.New("no certificate source: give --certs, --acme or --self-signed")
		}
	}
	s.config = tlsstore.ServerConfig(get, tlsstore.ConfigOptions{ACME: s.acme != nil})
	return s, nil
}
