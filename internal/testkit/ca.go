package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// CA is a throwaway certificate authority: a self-signed root (NewCA) or an
// intermediate signed by another CA (Intermediate). Its keys are ECDSA
// P-256, its certificates valid from an hour ago for a week.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte         // Cert, PEM-encoded
	Pool *x509.CertPool // trusts the root this CA descends from (itself for a root)

	// chain is the DER of this CA and of the intermediates above it, up to
	// but not including the root: what a server sends after its leaf.
	chain [][]byte
}

// NewCA returns a root CA named cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	return newCA(t, cn, nil)
}

// Intermediate returns a CA named cn signed by ca. Its Pool is ca's: it
// trusts the root, not the intermediate.
func (ca *CA) Intermediate(t testing.TB, cn string) *CA {
	t.Helper()
	return newCA(t, cn, ca)
}

func newCA(t testing.TB, cn string, parent *CA) *CA {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	issuer, issuerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, issuerKey = parent.Cert, parent.Key
	}
	cert := create(t, tmpl, issuer, key.Public(), issuerKey)
	ca := &CA{Cert: cert, Key: key, PEM: PEM("CERTIFICATE", cert.Raw)}
	if parent != nil {
		ca.Pool = parent.Pool
		ca.chain = append([][]byte{cert.Raw}, parent.chain...)
	} else {
		ca.Pool = x509.NewCertPool()
		ca.Pool.AddCert(cert)
	}
	return ca
}

// LeafOptions say what certificate CA.IssueLeaf makes. Only Names is
// required.
type LeafOptions struct {
	// Names are the DNS names ("*.example.org" too) and IP addresses the
	// certificate is for; the first is also its subject's common name.
	Names []string
	// Client makes a client certificate (for mutual TLS) instead of a
	// server certificate.
	Client bool
	// Key is the certificate's key. If nil, a new ECDSA P-256 key.
	Key crypto.Signer
	// NotAfter ends the validity. If zero, a day from now. Validity always
	// starts an hour ago.
	NotAfter time.Time
	// OCSPServer are the OCSP responder URLs the certificate names.
	OCSPServer []string
}

// Leaf is a certificate issued by a CA, with its key.
type Leaf struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // the leaf alone
	KeyPEM  []byte // PKCS #8

	chain [][]byte // the issuing intermediates, nearest first
}

// Issue returns a server certificate for names (see LeafOptions.Names)
// with a new ECDSA P-256 key, valid for a day.
func (ca *CA) Issue(t testing.TB, names ...string) *Leaf {
	t.Helper()
	return ca.IssueLeaf(t, LeafOptions{Names: names})
}

// IssueLeaf returns the certificate o describes, signed by ca.
func (ca *CA) IssueLeaf(t testing.TB, o LeafOptions) *Leaf {
	t.Helper()
	if len(o.Names) == 0 {
		t.Fatal("testkit: a leaf certificate needs at least one name")
	}
	if o.Key == nil {
		o.Key = newECKey(t)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: o.Names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		OCSPServer:   o.OCSPServer,
	}
	if o.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	cert := create(t, tmpl, ca.Cert, o.Key.Public(), ca.Key)
	der, err := x509.MarshalPKCS8PrivateKey(o.Key)
	if err != nil {
		t.Fatalf("testkit: marshal key: %v", err)
	}
	return &Leaf{
		Cert:    cert,
		Key:     o.Key,
		CertPEM: PEM("CERTIFICATE", cert.Raw),
		KeyPEM:  PEM("PRIVATE KEY", der),
		chain:   ca.chain,
	}
}

// TLSCertificate returns the leaf as a server or client presents it: the
// leaf, then the intermediates that issued it.
func (l *Leaf) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: append([][]byte{l.Cert.Raw}, l.chain...),
		PrivateKey:  l.Key,
		Leaf:        l.Cert,
	}
}

// ChainPEM is the leaf followed by the intermediates that issued it,
// PEM-encoded: the certificate file a server loads.
func (l *Leaf) ChainPEM() []byte {
	out := slices.Clone(l.CertPEM)
	for _, der := range l.chain {
		out = append(out, PEM("CERTIFICATE", der)...)
	}
	return out
}

// WriteFiles writes dir/NAME.crt (ChainPEM) and dir/NAME.key (KeyPEM) and
// returns their paths.
func (l *Leaf) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	return WriteFile(t, dir, name+".crt", l.ChainPEM()), WriteFile(t, dir, name+".key", l.KeyPEM)
}

// WriteFile writes data to dir/name, readable by the owner only, and
// returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// PEM encodes der as one PEM block of type typ ("CERTIFICATE", "PRIVATE
// KEY", ...).
func PEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// serial is a random 64-bit serial number: certificates of one issuer must
// not share one.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func create(t testing.TB, tmpl, issuer *x509.Certificate, pub crypto.PublicKey, issuerKey crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, issuerKey)
	if err != nil {
		t.Fatalf("testkit: create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
