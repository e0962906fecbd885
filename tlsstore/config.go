package tlsstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
)

// ConfigOptions tune ServerConfig. The zero value is the production setting
// without ACME.
type ConfigOptions struct {
	// ACME adds "acme-tls/1" to the ALPN protocols, so that the CA's
	// TLS-ALPN-01 validation handshakes reach ACME.GetCertificate.
	ACME bool
	// TicketRotation is how long one session ticket key encrypts new
	// tickets. If zero, 12h. A key keeps decrypting for two more periods,
	// so a ticket resumes for at least two periods after it was issued.
	TicketRotation time.Duration
	// Now is the clock of the ticket key rotation. If nil, time.Now.
	Now func() time.Time
	// Tickets, if set, are the fleet's session ticket keys: while it holds
	// a key in force, tickets are sealed and opened with its keys, so a
	// ticket issued by one edge resumes on any other; else with the
	// edge's own rotating keys.
	Tickets *TicketKeys
}

// TicketKey is one of the fleet's session ticket keys.
type TicketKey struct {
	Secret [32]byte
	// From is when edges start sealing new tickets with it (the newest key
	// whose From has passed seals); until then it only opens them.
	From time.Time
	// Until is when it retires: tickets under it no longer resume.
	Until time.Time
}

// TicketKeys is the fleet's set of session ticket keys, replaced as a whole
// by Set (from the control plane) and read on handshakes without a lock.
// The zero value holds none.
type TicketKeys struct {
	keys atomic.Pointer[[]ticketKey] // newest From first
}

// Set replaces the keys.
func (t *TicketKeys) Set(keys []TicketKey) error {
	out := make([]ticketKey, 0, len(keys))
	for _, k := range keys {
		tk, err := newTicketKey(k.Secret, k.From, k.Until)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(k.Secret[:])
		copy(tk.id[:], sum[:]) // the same id on every edge
		out = append(out, tk)
	}
	slices.SortFunc(out, func(a, b ticketKey) int { return b.from.Compare(a.from) })
	t.keys.Store(&out)
	return nil
}

// inForce returns the keys if one of them seals at now.
func (t *TicketKeys) inForce(now time.Time) ([]ticketKey, bool) {
	if t == nil {
		return nil, false
	}
	ks := t.keys.Load()
	if ks == nil {
		return nil, false
	}
	for _, k := range *ks {
		if k.seals(now) {
			return *ks, true
		}
	}
	return nil, false
}

// ticketKeyPeriods is how many rotation periods a ticket key decrypts:
// the period it encrypts in and two more.
const ticketKeyPeriods = 3

// ServerConfig returns the edge's server TLS configuration: TLS 1.2 and 1.3
// only; for TLS 1.2, ECDHE key exchange with AEAD ciphers only (AES-GCM,
// ChaCha20-Poly1305; TLS 1.3's suites are all AEAD and not configurable);
// key exchange groups X25519MLKEM768, X25519 and P-256; ALPN h2 and
// http/1.1; certificates from get.
//
// Session tickets are sealed by WrapSession/UnwrapSession with keys that
// rotate every TicketRotation. The rotation happens on the first handshake
// after a period ends instead of in a goroutine, so there is nothing to
// stop, and it survives tls.Config.Clone (net/http clones the config; a
// key set with SetSessionTicketKeys on the original would not reach the
// clone). The edge's own keys are random per process: a ticket resumes on
// the edge node that issued it, unless ConfigOptions.Tickets holds the
// fleet's keys.
func ServerConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error), o ConfigOptions) *tls.Config {
	if o.TicketRotation <= 0 {
		o.TicketRotation = 12 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	protos := []string{"h2", "http/1.1"}
	if o.ACME {
		protos = append(protos, acme.ALPNProto)
	}
	r := &ticketRing{period: o.TicketRotation, now: o.Now, rand: rand.Reader, shared: o.Tickets}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       protos,
		GetCertificate:   get,
		WrapSession:      r.wrap,
		UnwrapSession:    r.unwrap,
	}
}

// ticketKey seals session tickets with AES-256-GCM from from and opens
// them until until.
type ticketKey struct {
	id          [8]byte
	aead        cipher.AEAD
	from, until time.Time
}

func newTicketKey(secret [32]byte, from, until time.Time) (ticketKey, error) {
	k := ticketKey{from: from, until: until}
	block, err := aes.NewCipher(secret[:])
	if err != nil {
		return k, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return k, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	return k, nil
}

func (k ticketKey) seals(now time.Time) bool { return !now.Before(k.from) && now.Before(k.until) }

// ticketRing holds the session ticket keys, newest first.
type ticketRing struct {
	period time.Duration
	now    func() time.Time
	rand   io.Reader

	keys atomic.Pointer[[]ticketKey] // read on every handshake without a lock
	mu   sync.Mutex                  // mu serializes rotations

	shared *TicketKeys // the fleet's keys, preferred while one is in force
}

// current returns the keys in use: the fleet's while one of them seals,
// else the edge's own, rotating first when the newest has encrypted for a
// full period.
func (r *ticketRing) current(now time.Time) ([]ticketKey, error) {
	if ks, ok := r.shared.inForce(now); ok {
		return ks, nil
	}
	if ks := r.keys.Load(); ks != nil && now.Before((*ks)[0].from.Add(r.period)) {
		return *ks, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var old []ticketKey
	if ks := r.keys.Load(); ks != nil {
		if now.Before((*ks)[0].from.Add(r.period)) {
			return *ks, nil // another handshake rotated first
		}
		old = *ks
	}
	var secret [32]byte
	if _, err := io.ReadFull(r.rand, secret[:]); err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	k, err := newTicketKey(secret, now, now.Add(ticketKeyPeriods*r.period))
	if err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r.rand, k.id[:]); err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	next := []ticketKey{k}
	for _, o := range old {
		if now.Before(o.until) {
			next = append(next, o)
		}
	}
	r.keys.Store(&next)
	return next, nil
}

// wrap seals a session as id | nonce | AES-GCM(session), the id as
// additional data.
func (r *ticketRing) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	now := r.now()
	ks, err := r.current(now)
	if err != nil {
		return nil, err
	}
	plain, err := ss.Bytes()
	if err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket: %w", err)
	}
	k := ks[0]
	for _, c := range ks { // the newest that seals: a fleet key published ahead waits for its From
		if c.seals(now) {
			k = c
			break
		}
	}
	ns := k.aead.NonceSize()
	out := make([]byte, len(k.id)+ns, len(k.id)+ns+len(plain)+k.aead.Overhead())
	copy(out, k.id[:])
	if _, err := io.ReadFull(r.rand, out[len(k.id):]); err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket nonce: %w", err)
	}
	return k.aead.Seal(out, out[len(k.id):], plain, out[:len(k.id)]), nil
}

// unwrap opens a ticket. A ticket it cannot open (unknown or retired key,
// tampering) yields (nil, nil): crypto/tls then does a full handshake
// instead of failing the connection.
func (r *ticketRing) unwrap(identity []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	now := r.now()
	ks, err := r.current(now)
	if err != nil {
		return nil, nil
	}
	for _, k := range ks {
		ns := k.aead.NonceSize()
		if len(identity) < len(k.id)+ns || [8]byte(identity[:8]) != k.id {
			continue
		}
		if !now.Before(k.until) {
			return nil, nil
		}
		plain, err := k.aead.Open(nil, identity[8:8+ns], identity[8+ns:], identity[:8])
		if err != nil {
			return nil, nil
		}
		ss, err := tls.ParseSessionState(plain)
		if err != nil {
			return nil, nil
		}
		return ss, nil
	}
	return nil, nil
}
