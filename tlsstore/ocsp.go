package tlsstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ocsp"
)

// ocspRetry is how long after a failed OCSP fetch the next one is tried.
const ocspRetry = 10 * time.Minute

// ocspState is when a certificate's staple is due, by certificate name and
// content (a replaced certificate starts afresh).
type ocspState struct {
	hash [32]byte
	due  time.Time
}

// staple fetches OCSP responses for the directory's certificates that name
// a responder and carry their issuer in the chain, when a certificate has
// no staple yet or its staple is past half its validity, and swaps in a
// stapled copy. Run calls it on each poll; a failed fetch is logged and
// retried after ocspRetry, and the certificate is served as it is. Only
// Run's goroutine touches s.ocsp.
func (s *Store) staple(ctx context.Context) {
	now := s.now()
	for name, e := range s.snap.Load().byName {
		if len(e.cert.Leaf.OCSPServer) == 0 || len(e.cert.Certificate) < 2 {
			continue
		}
		if st, ok := s.ocsp[name]; ok && st.hash == e.hash && now.Before(st.due) {
			continue
		}
		raw, due, err := fetchOCSP(ctx, s.ocspClient, e.cert, now)
		if err != nil {
			s.ocsp[name] = ocspState{hash: e.hash, due: now.Add(ocspRetry)}
			s.log.Warn("no OCSP staple; serving the certificate without one", zap.String("name", name), zap.Error(err))
			continue
		}
		s.ocsp[name] = ocspState{hash: e.hash, due: due}
		s.swapStapled(name, e, raw)
	}
}

// swapStapled replaces e (if still in force) with a copy stapled with raw.
func (s *Store) swapStapled(name string, e *entry, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	if cur.byName[name] != e {
		return // reloaded meanwhile
	}
	c := *e.cert
	c.OCSPStaple = raw
	ne := *e
	ne.cert = &c
	next := make(map[string]*entry, len(cur.byName))
	for n, x := range cur.byName {
		next[n] = x
	}
	next[name] = &ne
	s.snap.Store(index(next))
}

// fetchOCSP asks the certificate's first responder about its leaf and
// returns the response and when to ask again: half way to its NextUpdate.
// A revoked or unknown status is an error: nothing is stapled.
func fetchOCSP(ctx context.Context, c *http.Client, cert *tls.Certificate, now time.Time) ([]byte, time.Time, error) {
	leaf := cert.Leaf
	issuer, err := x509.ParseCertificate(cert.Certificate[1])
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp: issuer: %w", err)
	}
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp: %w", err)
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := c.Do(hr)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("ocsp: responder answered %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp: %w", err)
	}
	r, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ocsp: %w", err)
	}
	if r.Status != ocsp.Good {
		return nil, time.Time{}, errors.New("ocsp: the responder says the certificate is revoked or unknown")
	}
	due := now.Add(time.Hour)
	if !r.NextUpdate.IsZero() {
		due = r.ThisUpdate.Add(r.NextUpdate.Sub(r.ThisUpdate) / 2)
	}
	return raw, due, nil
}
