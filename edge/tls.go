package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/fleet"
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
	ACMECache     string // account and certificate cache directory; "" with Fleet: the fleet's state
	ACMECA        string // PEM file of CA roots for the ACME directory (a private or test CA)
	// Fleet is the fleet's shared state through the control plane. If set,
	// the edge seals session tickets with the fleet's keys (a ticket
	// resumes on any edge), and with ACMECache empty ACME keeps its
	// account, certificates, locks and challenges there (one order per host
	// for the fleet, validations answered by any edge).
	Fleet *fleet.Client
}

// tlsSetup holds what serves HTTPS: the certificate store, ACME, and the
// listener configuration.
type tlsSetup struct {
	config *tls.Config
	acme   tlsstore.ACMESource // nil without ACME
	store  *tlsstore.Store
	close  func() // stops ACME's maintenance
	m      *tlsMetrics
}

// listener returns the HTTPS listener over inner: TLS with config, its
// handshakes counted; srv, which serves it, counts them as early as it can.
func (s *tlsSetup) listener(inner net.Listener, srv *http.Server) net.Listener {
	s.m.watch(srv)
	return s.m.listener(inner, s.config)
}

// newTLS builds the certificate selection for the HTTPS listener: the
// certificate directory (if it exists), ACME for tls=auto routes, and the
// route certificates of the snapshot in force. With no certificate source at
// all, the listener still routes SNI passthrough and fails other handshakes.
// httpPort and httpsPort are the edge's listener ports, where the CA
// validates.
func newTLS(ctx context.Context, o TLSOptions, httpPort, httpsPort int, e *Edge, log *zap.Logger, reg prometheus.Registerer) (*tlsSetup, error) {
	s := &tlsSetup{close: func() {}}
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
	allowed := func(host string) bool { return e.Snapshot().ACMEHost(host) }
	var roots *x509.CertPool
	if o.ACME && o.ACMECA != "" {
		pem, err := os.ReadFile(o.ACMECA)
		if err != nil {
			return nil, fmt.Errorf("edge: --acme-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, errors.New("edge: --acme-ca: no certificate in the file")
		}
	}
	switch {
	case o.ACME && o.Fleet != nil && o.ACMECache == "":
		a, err := tlsstore.NewFleetACME(tlsstore.FleetACMEOptions{
			Storage:      fleetStorage{o.Fleet},
			DirectoryURL: o.ACMEDirectory,
			Email:        o.ACMEEmail,
			Roots:        roots,
			HTTPPort:     httpPort,
			TLSPort:      httpsPort,
			HostAllowed:  allowed,
			Logger:       log.Named("acme"),
			Registerer:   reg,
		})
		if err != nil {
			return nil, fmt.Errorf("edge: --acme: %w", err)
		}
		s.acme, s.close = a, a.Close
	case o.ACME:
		var client *http.Client
		if roots != nil {
			client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			}}
		}
		a, err := tlsstore.NewACME(tlsstore.ACMEOptions{
			DirectoryURL: o.ACMEDirectory,
			Email:        o.ACMEEmail,
			CacheDir:     o.ACMECache,
			HTTPClient:   client,
			HostAllowed:  allowed,
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
	co := tlsstore.ConfigOptions{ACME: s.acme != nil}
	if o.Fleet != nil {
		co.Tickets = &tlsstore.TicketKeys{}
		stop := pollTickets(ctx, o.Fleet, co.Tickets, log.Named("tickets"),
			pollTiming{held: ticketPoll, first: ticketPollFirst, timeout: ticketPollTimeout})
		closeACME := s.close
		s.close = func() { stop(); closeACME() }
	}
	s.config = tlsstore.ServerConfig(get, co)
	s.m = newTLSMetrics(reg)
	return s, nil
}

// Session ticket key polling: every minute once the edge holds the fleet's
// keys; until then after a second, then after twice as long at each poll
// that finds none, up to the minute, so that an edge finds the keys within
// a second or two of a control plane that comes up with them, and costs a
// control plane that keeps no state (no --state-key-file) one poll a
// minute, not one a second. A poll gives up after ticketPollTimeout (the
// fleet client goes round the replicas with backoff until then).
const (
	ticketPoll        = time.Minute
	ticketPollFirst   = time.Second
	ticketPollTimeout = 3 * time.Second
)

// pollTiming is when pollTickets polls: held, the period once it holds
// keys; first, the first wait while it holds none, doubled up to held;
// timeout, the longest poll.
type pollTiming struct{ held, first, timeout time.Duration }

// pollTickets keeps tk set to the fleet's session ticket keys until the
// returned stop is called. While it has none (the control plane is
// unreachable or keeps no state), the edge seals tickets with its own keys.
func pollTickets(ctx context.Context, c *fleet.Client, tk *tlsstore.TicketKeys, log *zap.Logger, pt pollTiming) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held, failing bool
		backoff := pt.first
		for {
			pctx, pcancel := context.WithTimeout(ctx, pt.timeout)
			keys, err := c.TicketKeys(pctx)
			pcancel()
			if err == nil {
				conv := make([]tlsstore.TicketKey, len(keys))
				for i, k := range keys {
					conv[i] = tlsstore.TicketKey{Secret: [32]byte(k.Secret), From: k.From, Until: k.Until}
				}
				err = tk.Set(conv)
			}
			switch {
			case err != nil && !failing && ctx.Err() == nil:
				log.Warn("no session ticket keys from the control plane; tickets resume on this edge only until it answers", zap.Error(err))
			case err == nil && (failing || !held):
				log.Info("session ticket keys of the fleet in use", zap.Int("keys", len(keys)))
			}
			failing, held = err != nil, held || err == nil
			wait := pt.held
			if !held {
				wait, backoff = backoff, min(2*backoff, pt.held)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// fleetStorage is the fleet's state as certmagic.Storage, whose Stat
// returns its own KeyInfo.
type fleetStorage struct{ *fleet.Client }

func (s fleetStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	ki, err := s.Client.Stat(ctx, key)
	return certmagic.KeyInfo{Key: ki.Key, Modified: ki.Modified, Size: ki.Size, IsTerminal: ki.IsTerminal}, err
}

var _ certmagic.Storage = fleetStorage{}
