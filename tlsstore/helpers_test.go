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
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
		return key, testkit.PEM("EC PRIVATE KEY", der)
	case rsaPKCS1:
		return key, testkit.PEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey)))
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, testkit.PEM("PRIVATE KEY", der)
}

// issueKey is ca.Issue with a new key of kind k, its KeyPEM encoded as k
// says: the formats that parseKeyPEM must read.
func issueKey(t testing.TB, ca *testkit.CA, k keyKind, names ...string) *testkit.Leaf {
	t.Helper()
	key, keyPEM := newKey(t, k)
	l := ca.IssueLeaf(t, testkit.LeafOptions{Names: names, Key: key})
	l.KeyPEM = keyPEM
	return l
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
	testkit.ServeConns(t, ln, 5*time.Second, func(c net.Conn) { handle(c.(*tls.Conn)) })
	return ln.Addr().String()
}
