package tlsstore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxFileSize bounds what one certificate or key file may hold. A chain of
// a few certificates is a few kilobytes; anything far larger is not a
// certificate and is refused rather than read into memory.
const maxFileSize = 1 << 20

// sources names the files that make up one certificate in the directory.
// Paths are empty when the file is absent.
type sources struct {
	cert string // NAME.crt or NAME.cert (Interlock's ssl_cert secrets end in .cert)
	key  string // NAME.key
	pem  string // NAME.pem: certificate chain, and the key unless NAME.key exists
}

// scanDir lists the certificate names found in dir. Hidden files (".tmp"
// files of an atomic rename, Kubernetes-style "..data" links) and files
// with other extensions (the other secrets attached to the edge) are
// ignored, so the directory can be /run/secrets as is.
func scanDir(dir string) (map[string]sources, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tlsstore: read directory: %w", err)
	}
	out := map[string]sources{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		ext := filepath.Ext(name)
		base := strings.TrimSuffix(name, ext)
		if base == "" {
			continue
		}
		path := filepath.Join(dir, name)
		// Stat follows symlinks: a link to a regular file counts, a
		// directory does not.
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		s := out[base]
		switch ext {
		case ".crt":
			s.cert = path
		case ".cert":
			if s.cert == "" { // NAME.crt wins over NAME.cert
				s.cert = path
			}
		case ".key":
			s.key = path
		case ".pem":
			s.pem = path
		default:
			continue
		}
		out[base] = s
	}
	for name, s := range out {
		if s.cert == "" && s.pem == "" {
			delete(out, name) // a lone .key is some other secret
		}
	}
	return out, nil
}

// read returns the certificate PEM and the key PEM of s. NAME.crt/.cert
// wins over NAME.pem when both exist.
func (s sources) read() (certPEM, keyPEM []byte, err error) {
	certPath := s.cert
	if certPath == "" {
		certPath = s.pem
	}
	if certPEM, err = readLimited(certPath); err != nil {
		return nil, nil, err
	}
	switch {
	case s.key != "":
		keyPEM, err = readLimited(s.key)
	case s.cert == "":
		keyPEM = certPEM // one NAME.pem holding both
	default:
		err = fmt.Errorf("%s has no matching .key file", filepath.Base(s.cert))
	}
	return certPEM, keyPEM, err
}

// files names the files of s for logs.
func (s sources) files() string {
	var names []string
	for _, p := range []string{s.cert, s.pem, s.key} {
		if p != "" {
			names = append(names, filepath.Base(p))
		}
	}
	return strings.Join(names, "+")
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), maxFileSize)
	}
	return b, nil
}

// fingerprint identifies the content of a certificate so that an unchanged
// file is not parsed again. Only the digest is kept, never the key bytes.
func fingerprint(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// parseCertificate builds a certificate from PEM data: the CERTIFICATE
// blocks of certPEM and the first private key block of keyPEM (PKCS#8,
// PKCS#1 RSA or SEC 1 EC; RSA, ECDSA or Ed25519). The two may be the same
// bytes. The certificate whose public key matches the private key becomes
// the leaf wherever it appears in the file, and the others follow it in
// issuer order, because operators paste chains in every order.
func parseCertificate(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	var ders [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return nil, errors.New("tlsstore: no CERTIFICATE block")
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("tlsstore: certificate %d: %w", i+1, err)
		}
	}
	leaf := -1
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil, errors.New("tlsstore: unsupported private key")
	}
	for i, c := range certs {
		if pub.Equal(c.PublicKey) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return nil, errors.New("tlsstore: private key matches no certificate in the file")
	}
	order := chainOrder(certs, leaf)
	out := &tls.Certificate{PrivateKey: key, Leaf: certs[leaf]}
	for _, i := range order {
		out.Certificate = append(out.Certificate, ders[i])
	}
	return out, nil
}

// chainOrder returns the indexes of certs starting at leaf and following
// issuers; certificates that belong to no such path keep their file order
// at the end.
func chainOrder(certs []*x509.Certificate, leaf int) []int {
	used := make([]bool, len(certs))
	order := []int{leaf}
	used[leaf] = true
	for cur := certs[leaf]; ; {
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) {
			break // self-signed: the top of the chain
		}
		next := -1
		for i, c := range certs {
			if !used[i] && bytes.Equal(c.RawSubject, cur.RawIssuer) {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		order = append(order, next)
		cur = certs[next]
	}
	for i := range certs {
		if !used[i] {
			order = append(order, i)
		}
	}
	return order
}

func parseKeyPEM(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("tlsstore: no PRIVATE KEY block")
		}
		if b.Type != "PRIVATE KEY" && !strings.HasSuffix(b.Type, " PRIVATE KEY") {
			continue
		}
		if _, ok := b.Headers["DEK-Info"]; ok || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("tlsstore: encrypted private keys are not supported")
		}
		return parseKeyDER(b.Bytes)
	}
}

// parseKeyDER accepts the three encodings crypto/tls accepts, without
// reporting which one failed: parse errors of key material stay vague.
func parseKeyDER(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("tlsstore: unsupported private key type %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("tlsstore: private key is not PKCS#8, PKCS#1 or SEC 1")
}

// certNames returns the lower-cased host names a leaf certificate is valid
// for: its DNS SANs, or its CN when it has none (legacy certificates).
//
// These are certificate names, not route patterns, and deliberately not
// checked with router.ParseHost, the one syntax of route hosts. A
// certificate's "*.example.org" covers exactly one label (RFC 6125 section
// 6.4.3: a.example.org, not a.b.example.org), where a route's covers any
// depth; and a SAN is whatever the CA signed (an underscore in a private
// PKI name, say), which the store must match as the client sends it rather
// than reject by route rules. So names are only normalised here, and the
// store's index matches them by the certificate rule.
func certNames(leaf *x509.Certificate) []string {
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" && strings.Contains(leaf.Subject.CommonName, ".") {
		names = []string{leaf.Subject.CommonName}
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, normalizeHost(n))
	}
	return out
}

// normalizeHost lower-cases a host name, drops a trailing dot and any port
// (ACME's HTTP-01 requests carry one in Host). It validates nothing: SNI
// names and SANs are compared, not parsed as routes (see certNames), and an
// IPv6 literal keeps its brackets, where the router's request-host rule
// sends it to the default backend.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
