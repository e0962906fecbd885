package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestHTTP3 reaches a service through the production stack's edge over
// HTTP/3: the HTTPS port published over UDP in host mode, the edge serves
// QUIC there with the certificate of a Docker secret, and its HTTPS (TCP)
// answers advertise it with Alt-Svc.
func TestHTTP3(t *testing.T) {
	const host = "h3.e2e.test"
	ca := testkit.NewCA(t, "swarmgate e2e HTTP/3 CA")
	leaf := ca.Issue(t, host)
	secrets := []struct{ name, target string }{{prefix + "-h3.crt", "h3.crt"}, {prefix + "-h3.key", "h3.key"}}
	docker("secret", "rm", secrets[0].name, secrets[1].name) // leftovers of an interrupted run
	createSecret(t, secrets[0].name, leaf.CertPEM)
	createSecret(t, secrets[1].name, leaf.KeyPEM)
	t.Cleanup(func() { removeSecrets(t, []string{secrets[0].name, secrets[1].name}) })
	createEcho(t, "h3-app", 1, map[string]string{"swarmgate.hosts": host, "swarmgate.port": "8000", "swarmgate.tls": "h3"})
	// The suite deploys the stack with admin-published.yml, and docker
	// stack deploy keeps one port per published number across -c files
	// (deploy/admin-published.yml): the UDP port is published here, as
	// the stack file alone publishes it.
	udp := "mode=host,target=443,published=" + edgeHTTPS[strings.LastIndex(edgeHTTPS, ":")+1:] + ",protocol=udp"
	updateEdge(t, "--secret-add", "source="+secrets[0].name+",target="+secrets[0].target,
		"--secret-add", "source="+secrets[1].name+",target="+secrets[1].target, "--publish-add", udp)
	t.Cleanup(func() {
		updateEdge(t, "--secret-rm", secrets[0].name, "--secret-rm", secrets[1].name, "--publish-rm", "443/udp")
	})

	// Over TLS on TCP first: the answer names the UDP port to use.
	c := httpsClient(ca.Pool, host)
	resp, _ := waitHTTPS(t, c, host, "/", 90*time.Second)
	if got, want := resp.Header.Get("Alt-Svc"), `h3=":443"; ma=86400`; got != want {
		t.Errorf("Alt-Svc %q, want %q (the edge's own port; the stack publishes it as %s)", got, want, edgeHTTPS)
	}

	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, edgeHTTPS, tc, qc) // 127.0.0.1:18443, over UDP
		},
	}
	defer tr.Close()
	h3 := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	testkit.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		resp, err := h3.Get("https://" + host + "/over-quic")
		if err != nil {
			return fmt.Errorf("HTTP/3: %w", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var a answer
		if resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" || json.Unmarshal(b, &a) != nil {
			return fmt.Errorf("HTTP/3: %s %d %q", resp.Proto, resp.StatusCode, b)
		}
		if a.Service != prefix+"-h3-app" || a.Path != "/over-quic" || a.Host != host {
			return fmt.Errorf("HTTP/3 answer %+v", a)
		}
		return nil
	})
}
