package socketproxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestMutualTLS(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "OK")
	}))
	defer up.Close()
	dir := t.TempDir()
	ca, other := testkit.NewCA(t, "swarmgate test CA"), testkit.NewCA(t, "another CA")
	srvCert, srvKey := ca.Issue(t, "socket-proxy", "127.0.0.1").WriteFiles(t, dir, "s")
	conf, err := ServerTLSConfig(srvCert, srvKey, testkit.WriteFile(t, dir, "ca.pem", ca.PEM))
	if err != nil {
		t.Fatal(err)
	}
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL)}, conf)

	roots := ca.Pool
	client := func(ca *testkit.CA, name string) []tls.Certificate {
		return []tls.Certificate{ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{name}, Client: true}).TLSCertificate()}
	}
	for _, tt := range []struct {
		name  string
		certs []tls.Certificate
		max   uint16
		ok    bool
	}{
		{"client certificate from the CA", client(ca, "edge"), 0, true},
		{"no client certificate", nil, 0, false},
		{"client certificate from another CA", client(other, "intruder"), 0, false},
		{"TLS 1.1", client(ca, "edge"), tls.VersionTLS11, false},
	} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, Certificates: tt.certs, MaxVersion: tt.max, MinVersion: tls.VersionTLS10,
		}}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + tp.addr + "/_ping")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "OK" {
				err = &unexpected{resp.Status}
			}
		}
		tr.CloseIdleConnections()
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want success %v", tt.name, err, tt.ok)
		}
	}

	if _, err := ServerTLSConfig("", "", ""); err == nil {
		t.Error("ServerTLSConfig without a certificate succeeded")
	}
	if _, err := ServerTLSConfig(filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key"), filepath.Join(dir, "s.key")); err == nil {
		t.Error("ServerTLSConfig accepted a CA file without certificates")
	}
}

type unexpected struct{ status string }

func (u *unexpected) Error() string { return "unexpected response " + u.status }
