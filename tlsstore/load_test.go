package tlsstore

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestParseCertificate(t *testing.T) {
	root := testkit.NewCA(t, "root")
	inter := root.Intermediate(t, "intermediate")
	l := map[keyKind]*testkit.Leaf{}
	for _, k := range []keyKind{ecdsaPKCS8, ecdsaSEC1, rsaPKCS8, rsaPKCS1, ed25519PKCS8} {
		l[k] = issueKey(t, inter, k, "app.example.org")
	}
	other := inter.Issue(t, "other.example.org")
	tests := []struct {
		name      string
		cert, key []byte
		wantChain [][]byte // PEM of the expected chain, leaf first
		wantErr   string
	}{
		{"ECDSA PKCS#8", l[ecdsaPKCS8].CertPEM, l[ecdsaPKCS8].KeyPEM, [][]byte{l[ecdsaPKCS8].CertPEM}, ""},
		{"ECDSA SEC 1", l[ecdsaSEC1].CertPEM, l[ecdsaSEC1].KeyPEM, [][]byte{l[ecdsaSEC1].CertPEM}, ""},
		{"RSA PKCS#8", l[rsaPKCS8].CertPEM, l[rsaPKCS8].KeyPEM, [][]byte{l[rsaPKCS8].CertPEM}, ""},
		{"RSA PKCS#1", l[rsaPKCS1].CertPEM, l[rsaPKCS1].KeyPEM, [][]byte{l[rsaPKCS1].CertPEM}, ""},
		{"Ed25519 PKCS#8", l[ed25519PKCS8].CertPEM, l[ed25519PKCS8].KeyPEM, [][]byte{l[ed25519PKCS8].CertPEM}, ""},
		{"pem: leaf, intermediate, key", cat(l[ecdsaPKCS8].CertPEM, inter.PEM, l[ecdsaPKCS8].KeyPEM), nil,
			[][]byte{l[ecdsaPKCS8].CertPEM, inter.PEM}, ""},
		{"pem: key first", cat(l[ecdsaPKCS8].KeyPEM, l[ecdsaPKCS8].CertPEM, inter.PEM), nil,
			[][]byte{l[ecdsaPKCS8].CertPEM, inter.PEM}, ""},
		{"pem: root, intermediate, leaf reordered", cat(root.PEM, inter.PEM, l[ecdsaPKCS8].CertPEM, l[ecdsaPKCS8].KeyPEM), nil,
			[][]byte{l[ecdsaPKCS8].CertPEM, inter.PEM, root.PEM}, ""},
		{"pem: unrelated certificate kept last", cat(other.CertPEM, l[ecdsaPKCS8].CertPEM, inter.PEM, l[ecdsaPKCS8].KeyPEM), nil,
			[][]byte{l[ecdsaPKCS8].CertPEM, inter.PEM, other.CertPEM}, ""},
		{"mismatched key", l[ecdsaPKCS8].CertPEM, other.KeyPEM, nil, "matches no certificate"},
		{"key of another certificate, with chain", cat(l[ecdsaPKCS8].CertPEM, inter.PEM), other.KeyPEM, nil, "matches no certificate"},
		{"no key", l[ecdsaPKCS8].CertPEM, l[ecdsaPKCS8].CertPEM, nil, "no PRIVATE KEY"},
		{"no certificate", l[ecdsaPKCS8].KeyPEM, l[ecdsaPKCS8].KeyPEM, nil, "no CERTIFICATE"},
		{"garbage", []byte("not a certificate"), []byte("not a key"), nil, "no CERTIFICATE"},
		{"corrupt certificate", testkit.PEM("CERTIFICATE", []byte("junk")), l[ecdsaPKCS8].KeyPEM, nil, "certificate 1"},
		{"corrupt key", l[ecdsaPKCS8].CertPEM, testkit.PEM("PRIVATE KEY", []byte("junk")), nil, "not PKCS#8"},
		{"encrypted key", l[ecdsaPKCS8].CertPEM, testkit.PEM("ENCRYPTED PRIVATE KEY", []byte("x")), nil, "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == nil {
				key = tt.cert
			}
			got, err := parseCertificate(tt.cert, key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Certificate) != len(tt.wantChain) {
				t.Fatalf("chain has %d certificates, want %d", len(got.Certificate), len(tt.wantChain))
			}
			for i, p := range tt.wantChain {
				if !bytes.Equal(testkit.PEM("CERTIFICATE", got.Certificate[i]), p) {
					t.Errorf("chain[%d] is not the expected certificate", i)
				}
			}
			if !bytes.Equal(got.Leaf.Raw, got.Certificate[0]) {
				t.Error("Leaf is not Certificate[0]")
			}
			// The chain verifies and the key signs for it, as a handshake needs.
			inters := x509.NewCertPool()
			inters.AddCert(inter.Cert) // for the cases that give the leaf alone
			for _, der := range got.Certificate[1:] {
				c, _ := x509.ParseCertificate(der)
				inters.AddCert(c)
			}
			if _, err := got.Leaf.Verify(x509.VerifyOptions{Roots: root.Pool, Intermediates: inters, DNSName: "app.example.org"}); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

func TestScanDir(t *testing.T) {
	ca := testkit.NewCA(t, "ca")
	a := ca.Issue(t, "a.example.org")
	b := ca.Issue(t, "b.example.org")
	c := ca.Issue(t, "c.example.org")
	dir := t.TempDir()
	files := map[string][]byte{
		"a.crt":                       a.CertPEM,
		"a.key":                       a.KeyPEM,
		"b.pem":                       cat(b.CertPEM, b.KeyPEM),
		"demo_app.example.org.cert":   c.CertPEM, // Interlock's ssl_cert secret name
		"demo_app.example.org.key":    c.KeyPEM,
		"db_password":                 []byte("hunter2"), // another secret on the edge
		"lonely.key":                  a.KeyPEM,
		".b.pem.tmp":                  []byte("half written"),
		"notes.txt":                   []byte("x"),
		"chain-only.pem":              ca.PEM, // no key anywhere: reported
		"split.pem":                   b.CertPEM,
		"split.key":                   b.KeyPEM, // NAME.pem + NAME.key
		"orphan.crt":                  a.CertPEM,
		"subdir.crt/placeholder-file": nil,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "b.pem"), filepath.Join(dir, "linked.pem")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	s, err := New(Options{Dir: dir, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// The first load reports each bad certificate once.
	for _, name := range []string{"chain-only", "orphan"} {
		if got := testkit.MetricValue(t, s.metrics.reloadErrors.WithLabelValues(name)); got != 1 {
			t.Errorf("reload errors for %q = %v, want 1", name, got)
		}
	}
	if n := count(s.metrics.reloadErrors); n != 2 {
		t.Errorf("%d certificate names with reload errors, want 2", n)
	}
	if err == nil {
		err = s.Reload() // unchanged bad files are not reported twice
	}
	if err != nil {
		t.Fatalf("second load: %v", err)
	}
	tests := []struct {
		name string
		want *x509.Certificate // nil: not loaded
	}{
		{"a", a.Cert},
		{"b", b.Cert},
		{"demo_app.example.org", c.Cert},
		{"split", b.Cert},
		{"linked", b.Cert},
		{"db_password", nil},
		{"lonely", nil},
		{"notes", nil},
		{"chain-only", nil},
		{"orphan", nil},
		{"subdir", nil},
	}
	for _, tt := range tests {
		got, ok := s.Lookup(tt.name)
		switch {
		case tt.want == nil && ok:
			t.Errorf("Lookup(%q) loaded a certificate, want none", tt.name)
		case tt.want != nil && !ok:
			t.Errorf("Lookup(%q) found nothing", tt.name)
		case tt.want != nil && !got.Leaf.Equal(tt.want):
			t.Errorf("Lookup(%q) = %s, want %s", tt.name, got.Leaf.Subject, tt.want.Subject)
		}
	}
	if got := strings.Join(s.Names(), ","); got != "a,b,demo_app.example.org,linked,split" {
		t.Errorf("Names() = %s", got)
	}
}

func TestNewUnreadableDir(t *testing.T) {
	_, err := New(Options{Dir: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("New on a missing directory: err = %v", err)
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"App.Example.ORG":      "app.example.org",
		"app.example.org.":     "app.example.org",
		"app.example.org:5002": "app.example.org",
		"[::1]:443":            "[::1]",
		"":                     "",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}
