package control

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestMutualTLS serves the stream with a certificate and requires client
// certificates from a CA: an edge with one follows the stream over HTTP/2
// on TLS; one without, or with a certificate of another CA, gets nothing.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.NewCA(t, "control CA")
	other := testkit.NewCA(t, "another CA")
	srvCert, srvKey := ca.Issue(t, "127.0.0.1").WriteFiles(t, dir, "control")
	caFile := testkit.WriteFile(t, dir, "ca.pem", ca.PEM)
	edgeCert, edgeKey := ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"edge-1"}, Client: true}).WriteFiles(t, dir, "edge")
	strayCert, strayKey := other.IssueLeaf(t, testkit.LeafOptions{Names: []string{"stray"}, Client: true}).WriteFiles(t, dir, "stray")

	serverTLS, err := ServerTLSConfig(srvCert, srvKey, caFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", ServerOptions{Heartbeat: time.Hour}, serverTLS)
	srv.Update(manyRoutes(5, 0))

	tests := []struct {
		name      string
		cert, key string
		ok        bool
	}{
		{"client certificate of the CA", edgeCert, edgeKey, true},
		{"no client certificate", "", "", false},
		{"client certificate of another CA", strayCert, strayKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientTLS, err := ClientTLSConfig(tt.cert, tt.key, caFile)
			if err != nil {
				t.Fatal(err)
			}
			got := newConfigs()
			c := startClient(t, ClientOptions{Addrs: []string{srv.addr}, TLS: clientTLS}, got)
			if tt.ok {
				got.waitFor(t, manyRoutes(5, 0), "over mutual TLS")
				if _, proto, _ := c.tap.session(t, 0); proto != "HTTP/2.0" {
					t.Errorf("stream over %s, want HTTP/2.0", proto)
				}
				if !strings.HasPrefix(c.urls[0], "https://") {
					t.Errorf("stream URL %s, want https", c.urls[0])
				}
				return
			}
			testkit.Eventually(t, 10*time.Second, 0, func() error {
				if c.State().LastError == "" {
					return fmt.Errorf("no failed attempt yet")
				}
				return nil
			})
			if s := c.State(); s.Synced || s.Connected || got.count() != 0 {
				t.Errorf("refused client: %+v, %d updates", s, got.count())
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.NewCA(t, "ca")
	cert, key := ca.Issue(t, "127.0.0.1").WriteFiles(t, dir, "c")
	notPEM := testkit.WriteFile(t, dir, "empty.pem", []byte("nothing here"))
	for _, tt := range []struct {
		name string
		f    func() error
		want string
	}{
		{"server without key", func() error { _, err := ServerTLSConfig(cert, "", ""); return err }, "both required"},
		{"server CA without certificates", func() error { _, err := ServerTLSConfig(cert, key, notPEM); return err }, "no PEM certificate"},
		{"server missing file", func() error { _, err := ServerTLSConfig(dir+"/none.crt", key, ""); return err }, "no such file"},
		{"client cert without key", func() error { _, err := ClientTLSConfig(cert, "", ""); return err }, "go together"},
		{"client CA without certificates", func() error { _, err := ClientTLSConfig("", "", notPEM); return err }, "no PEM certificate"},
	} {
		if err := tt.f(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestClientAddresses(t *testing.T) {
	for _, tt := range []struct {
		addr string
		tls  bool
		want string // "" for an error
	}{
		{"tcp://control:7070", false, "http://control:7070/v1/stream"},
		{"tcp://control:7070", true, "https://control:7070/v1/stream"},
		{"https://10.0.0.1:7070/", false, "https://10.0.0.1:7070/v1/stream"},
		{"tcp://[::1]:7070", false, "http://[::1]:7070/v1/stream"},
		{"tcp://control", false, ""},
		{"unix:///run/control.sock", false, ""},
		{"tcp://control:7070/path", false, ""},
		{"tcp://user:pw@control:7070", false, ""},
		{"control:7070", false, ""},
	} {
		got, err := streamURL(tt.addr, tt.tls)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s: %s, want an error", tt.addr, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s (tls %v): %q, %v; want %q", tt.addr, tt.tls, got, err, tt.want)
		}
	}
	if _, err := NewClient(ClientOptions{}); err == nil {
		t.Error("a client with no address")
	}
}
