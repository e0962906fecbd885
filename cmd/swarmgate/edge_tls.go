package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/tlsstore"
)

// tlsOptions are the edge's TLS, ACME and PROXY protocol flags.
type tlsOptions struct {
	certs         string
	defaultCert   string
	selfSigned    bool
	acme          bool
	acmeEmail     string
	acmeDirectory string
	acmeCache     string
	acmeCA        string
	proxyFrom     string
	tcpHost       string
}

func (o *tlsOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.certs, "certs", "/run/secrets", "certificate directory: NAME.crt + NAME.key or NAME.pem (Docker secrets attached to the edge appear in /run/secrets)")
	f.StringVar(&o.defaultCert, "default-cert", "", "certificate NAME served when no certificate or route matches the TLS server name")
	f.BoolVar(&o.selfSigned, "self-signed", false, "serve a generated self-signed certificate when nothing else matches")
	f.BoolVar(&o.acme, "acme", false, "obtain certificates with ACME for routes labelled swarmgate.tls=auto (accepts the CA's terms of service)")
	f.StringVar(&o.acmeEmail, "acme-email", "", "ACME account contact")
	f.StringVar(&o.acmeDirectory, "acme-directory", "", "ACME directory URL (default Let's Encrypt production)")
	f.StringVar(&o.acmeCache, "acme-cache", "/var/lib/swarmgate/acme", "ACME account and certificate cache directory (a volume)")
	f.StringVar(&o.acmeCA, "acme-ca", "", "PEM file of CA roots for talking to the ACME directory (a private or test CA)")
	f.StringVar(&o.proxyFrom, "proxy-protocol-from", "", "comma-separated CIDRs of load balancers that send a PROXY protocol v1/v2 header on every connection")
	f.StringVar(&o.tcpHost, "tcp-host", "", "address the TCP route ports (swarmgate.tcp.port) listen on; empty: all")
}

func (o *tlsOptions) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(o.proxyFrom, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("--proxy-protocol-from %q: %w", s, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--proxy-protocol-from %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
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
// route certificates of the live table. With no certificate source at all,
// the listener still routes SNI passthrough and fails other handshakes.
func newTLS(ctx context.Context, o tlsOptions, p *proxy.Proxy, log *zap.Logger, reg prometheus.Registerer) (*tlsSetup, error) {
	s := &tlsSetup{}
	if _, err := os.Stat(o.certs); err == nil {
		store, err := tlsstore.New(tlsstore.Options{
			Dir:        o.certs,
			Fallback:   o.selfSigned,
			Default:    o.defaultCert,
			RouteCert:  func(host string) (string, bool) { return p.Table().CertFor(host) },
			Logger:     log.Named("tlsstore"),
			Registerer: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("edge: --certs: %w", err)
		}
		go store.Run(ctx)
		s.store = store
	} else if o.selfSigned {
		return nil, fmt.Errorf("edge: --self-signed needs a certificate directory: %w", err)
	} else {
		log.Info("no certificate directory; only ACME certificates are served", zap.String("certs", o.certs))
	}
	if o.acme {
		var client *http.Client
		if o.acmeCA != "" {
			pem, err := os.ReadFile(o.acmeCA)
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
			DirectoryURL: o.acmeDirectory,
			Email:        o.acmeEmail,
			CacheDir:     o.acmeCache,
			HTTPClient:   client,
			HostAllowed:  func(host string) bool { return p.Table().ACMEHost(host) },
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
