package tlsstore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
	pool *x509.CertPool
}

func newCA(t testing.TB, cn string) *testCA { return makeCA(t, cn, nil) }

// intermediate returns a CA signed by ca.
func (ca *testCA) intermediate(t testing.TB, cn string) *testCA { return makeCA(t, cn, ca) }

// makeCA returns a CA signed by parent that trusts parent's pool, or a
// self-signed root with a pool of its own when parent is nil.
func makeCA(t testing.TB, cn string, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	issuer, issuerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}
	if parent != nil {
		ca.pool = parent.pool
	} else {
		ca.pool = x509.NewCertPool()
		ca.pool.AddCert(cert)
	}
	return ca
}

// leaf is an issued certificate with its PEM encodings.
type leaf struct {
	cert    *x509.Certificate
	certPEM []byte // the leaf only
	keyPEM  []byte
}

type keyKind int

const (
	ecdsaPKCS8 keyKind = iota
	ecdsaSEC1
	rsaPKCS8
	rsaPKCS1
	ed25519PKCS8
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey // RSA generation is slow: one key for all tests
)

func newKey(t testing.TB, k keyKind) (crypto.Signer, []byte) {
	t.Helper()
	var key crypto.Signer
	var err error
	switch k {
	case ecdsaPKCS8, ecdsaSEC1:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case rsaPKCS8, rsaPKCS1:
		rsaOnce.Do(func() { rsaKey, err = rsa.GenerateKey(rand.Reader, 2048) })
		key = rsaKey
	case ed25519PKCS8:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	switch k {
	case ecdsaSEC1:
		der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		return key, pemBlock("EC PRIVATE KEY", der)
	case rsaPKCS1:
		return key, pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey)))
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pemBlock("PRIVATE KEY", der)
}

// issue signs a server certificate for the names (the first is also the CN).
func (ca *testCA) issue(t testing.TB, k keyKind, names ...string) leaf {
	t.Helper()
	return ca.issueUntil(t, k, time.Now().Add(12*time.Hour), names...)
}

func (ca *testCA) issueUntil(t testing.TB, k keyKind, notAfter time.Time, names ...string) leaf {
	t.Helper()
	key, keyPEM := newKey(t, k)
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(t),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return leaf{cert: cert, certPEM: pemBlock("CERTIFICATE", der), keyPEM: keyPEM}
}

func randSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// writeAtomic replaces dir/name the way Docker and config tools do: write
// a hidden temporary file, then rename it over the old one.
func writeAtomic(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// value reads a counter or gauge.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric %s is neither counter nor gauge", m.Desc())
	return 0
}

// count returns how many series c has.
func count(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// serveTLS accepts TLS connections on loopback until the test ends and hands
// each to handle under a 5 s deadline, closing it when handle returns.
func serveTLS(t *testing.T, cfg *tls.Config, handle func(c *tls.Conn)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("accept: %v", err)
				}
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c.(*tls.Conn))
			})
		}
	})
	return ln.Addr().String()
}
