package tlsstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
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
// clone). Keys are random per process: a ticket resumes on the edge node
// that issued it.
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
	r := &ticketRing{period: o.TicketRotation, now: o.Now, rand: rand.Reader}
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

// ticketKey seals session tickets with AES-256-GCM.
type ticketKey struct {
	id      [8]byte
	aead    cipher.AEAD
	created time.Time
}

// ticketRing holds the session ticket keys, newest first.
type ticketRing struct {
	period time.Duration
	now    func() time.Time
	rand   io.Reader

	keys atomic.Pointer[[]ticketKey] // read on every handshake without a lock
	mu   sync.Mutex                  // mu serializes rotations
}

// current returns the live keys, rotating first when the newest key has
// encrypted for a full period.
func (r *ticketRing) current(now time.Time) ([]ticketKey, error) {
	if ks := r.keys.Load(); ks != nil && now.Before((*ks)[0].created.Add(r.period)) {
		return *ks, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var old []ticketKey
	if ks := r.keys.Load(); ks != nil {
		if now.Before((*ks)[0].created.Add(r.period)) {
			return *ks, nil // another handshake rotated first
		}
		old = *ks
	}
	k := ticketKey{created: now}
	var secret [32]byte
	if _, err := io.ReadFull(r.rand, secret[:]); err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	if _, err := io.ReadFull(r.rand, k.id[:]); err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	block, err := aes.NewCipher(secret[:])
	if err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket key: %w", err)
	}
	next := []ticketKey{k}
	for _, o := range old {
		if r.live(o, now) {
			next = append(next, o)
		}
	}
	r.keys.Store(&next)
	return next, nil
}

func (r *ticketRing) live(k ticketKey, now time.Time) bool {
	return now.Before(k.created.Add(ticketKeyPeriods * r.period))
}

// wrap seals a session as id | nonce | AES-GCM(session), the id as
// additional data.
func (r *ticketRing) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	ks, err := r.current(r.now())
	if err != nil {
		return nil, err
	}
	plain, err := ss.Bytes()
	if err != nil {
		return nil, fmt.Errorf("tlsstore: session ticket: %w", err)
	}
	k := ks[0]
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
		if !r.live(k, now) {
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
