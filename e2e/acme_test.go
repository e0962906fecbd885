package e2e

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestACMEPebble: the production stack with --acme (SWARMGATE_ACME=true on
// the edge) against a Pebble CA on this host issues a certificate for a
// service labelled swarmgate.tls=auto, validated on the edge's published
// ports, with one order, and the edge serves it.
func TestACMEPebble(t *testing.T) {
	bin := testkit.PebbleBinary(t)
	host := prefix + "-acme.e2e.test"
	dns := testkit.ServeDNS(t, []string{host}) // the host is 127.0.0.1: the edge's published ports
	// The edge reaches Pebble's API on the Docker bridge's gateway; Pebble
	// validates on the ports the edge publishes on this host.
	gw := strings.TrimSpace(mustDocker(t, "network", "inspect", "docker_gwbridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"))
	_, hp, _ := net.SplitHostPort(edgeHTTP)
	_, tp, _ := net.SplitHostPort(edgeHTTPS)
	httpPort, _ := strconv.Atoi(hp)
	tlsPort, _ := strconv.Atoi(tp)
	p := testkit.StartPebbleOn(t, bin, gw, httpPort, tlsPort, dns)
	roots := p.IssuerRoots(t)

	caSecret := prefix + "-pebble-ca"
	docker("secret", "rm", caSecret) // a leftover of an interrupted run
	createSecret(t, caSecret, p.APIRootPEM)
	t.Cleanup(func() { removeSecrets(t, []string{caSecret}) })
	updateEdge(t, "--env-add", "SWARMGATE_ACME=true", "--env-add", "SWARMGATE_ACME_DIRECTORY="+p.Directory,
		"--env-add", "SWARMGATE_ACME_CA=/run/secrets/pebble-ca", "--secret-add", "source="+caSecret+",target=pebble-ca")
	t.Cleanup(func() {
		updateEdge(t, "--env-add", "SWARMGATE_ACME=false", "--env-rm", "SWARMGATE_ACME_DIRECTORY", "--env-rm", "SWARMGATE_ACME_CA",
			"--secret-rm", caSecret)
	})

	labelled := time.Now()
	createEcho(t, "acme", 1, map[string]string{
		"swarmgate.hosts": host,
		"swarmgate.port":  "8000",
		"swarmgate.tls":   "auto",
	})
	var serial string
	testkit.Eventually(t, 120*time.Second, 500*time.Millisecond, func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", edgeHTTPS, &tls.Config{ServerName: host, RootCAs: roots})
		if err != nil {
			return err
		}
		defer c.Close()
		serial = c.ConnectionState().PeerCertificates[0].SerialNumber.String()
		return nil
	})
	t.Logf("%s: certificate %s served %v after the label", host, serial, time.Since(labelled).Round(time.Millisecond))
	if n := strings.Count(p.Output(), "Added order"); n != 1 {
		t.Fatalf("Pebble took %d orders, want 1", n)
	}
	c := httpsClient(roots, host)
	if _, body := waitHTTPS(t, c, host, "/acme", 30*time.Second); body["service"] != prefix+"-acme" {
		t.Errorf("answer %v, want service %s-acme", body, prefix)
	}
}
