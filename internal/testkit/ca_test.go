package testkit

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

func TestCAChain(t *testing.T) {
	root := NewCA(t, "root")
	inter := root.Intermediate(t, "intermediate")
	if !root.Cert.IsCA || !inter.Cert.IsCA || inter.Cert.Issuer.CommonName != "root" {
		t.Fatalf("root %+v, intermediate issued by %q", root.Cert.Subject, inter.Cert.Issuer.CommonName)
	}
	if b, _ := pem.Decode(inter.PEM); b == nil || !bytes.Equal(b.Bytes, inter.Cert.Raw) {
		t.Fatal("PEM is not the certificate")
	}
	if inter.Pool != root.Pool {
		t.Fatal("an intermediate must trust its root")
	}

	tests := []struct {
		name string
		o    LeafOptions
		dns  []string
		ips  int
		use  x509.ExtKeyUsage
	}{
		{"server", LeafOptions{Names: []string{"app.example.org", "*.example.org"}}, []string{"app.example.org", "*.example.org"}, 0, x509.ExtKeyUsageServerAuth},
		{"server on loopback", LeafOptions{Names: []string{"socket-proxy", "127.0.0.1"}}, []string{"socket-proxy"}, 1, x509.ExtKeyUsageServerAuth},
		{"client", LeafOptions{Names: []string{"edge"}, Client: true}, []string{"edge"}, 0, x509.ExtKeyUsageClientAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := inter.IssueLeaf(t, tt.o)
			if l.Cert.Subject.CommonName != tt.o.Names[0] || !slices.Equal(l.Cert.DNSNames, tt.dns) || len(l.Cert.IPAddresses) != tt.ips {
				t.Fatalf("CN %q, DNS %v, IPs %v", l.Cert.Subject.CommonName, l.Cert.DNSNames, l.Cert.IPAddresses)
			}
			inters := x509.NewCertPool()
			inters.AddCert(inter.Cert)
			_, err := l.Cert.Verify(x509.VerifyOptions{Roots: root.Pool, Intermediates: inters,
				DNSName: tt.dns[0], KeyUsages: []x509.ExtKeyUsage{tt.use}})
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if _, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
				t.Fatalf("PEM pair: %v", err)
			}
		})
	}
}

func TestLeafOptions(t *testing.T) {
	ca := NewCA(t, "ca")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	l := ca.IssueLeaf(t, LeafOptions{Names: []string{"rsa.example.org"}, Key: key, NotAfter: until})
	if !l.Cert.NotAfter.Equal(until) || l.Key != key {
		t.Fatalf("NotAfter %v (want %v), key given: %v", l.Cert.NotAfter, until, l.Key == key)
	}
	if def := ca.Issue(t, "x.example.org"); def.Cert.NotAfter.Before(time.Now().Add(23 * time.Hour)) {
		t.Fatalf("default NotAfter %v, want a day from now", def.Cert.NotAfter)
	}
	if a, b := ca.Issue(t, "x.example.org"), ca.Issue(t, "x.example.org"); a.Cert.SerialNumber.Cmp(b.Cert.SerialNumber) == 0 {
		t.Fatal("two certificates with one serial")
	}
}

// TestLeafServes runs a TLS server on a leaf of an intermediate, loaded
// from the files WriteFiles wrote, and a client that trusts the root only:
// the server must send the intermediate.
func TestLeafServes(t *testing.T) {
	inter := NewCA(t, "root").Intermediate(t, "intermediate")
	l := inter.Issue(t, "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile := l.WriteFiles(t, dir, "srv")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	fromFiles, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]tls.Certificate{"files": fromFiles, "TLSCertificate": l.TLSCertificate()} {
		t.Run(name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.Write([]byte("ok"))
			}()
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: inter.Pool})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(c)
			c.Close()
			<-done
			if string(b) != "ok" {
				t.Fatalf("read %q", b)
			}
		})
	}
}
