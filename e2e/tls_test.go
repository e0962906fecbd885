package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestTLS exercises HTTPS on the edge in the real Swarm: certificates from
// Docker secrets attached to the edge (swarmgate.tls=NAME and Interlock's
// ssl_cert/ssl_key), SNI passthrough to a task that terminates TLS itself
// (Interlock's ssl_passthrough and swarmgate.tcp.sni), and a clean handshake
// failure for a name nothing serves.
//
// Every secret-add or secret-rm on the edge replaces its task, so the edge's
// secrets are attached in one update at the start and removed in one at the
// end; the subtests share them.
func TestTLS(t *testing.T) {
	edgeCA := testkit.NewCA(t, "swarmgate e2e edge CA")
	backendCA := testkit.NewCA(t, "swarmgate e2e backend CA") // passthrough backends: the edge never holds these
	const (
		appHost  = "tls.e2e.test"
		ilHost   = "il.e2e.test"
		ilptHost = "ilpt.e2e.test"
		sgptHost = "sgpt.e2e.test"
		ilName   = prefix + "-il.e2e.test" // Interlock certificate name: the ssl_cert secret minus .cert
	)
	app := edgeCA.Issue(t, appHost)
	il := edgeCA.Issue(t, ilHost)
	ilpt := backendCA.Issue(t, ilptHost)
	sgpt := backendCA.Issue(t, sgptHost)

	// Secrets and their targets in /run/secrets of the service they are
	// attached to.
	type secret struct {
		name, target string
		data         []byte
	}
	edgeSecrets := []secret{
		{prefix + "-app.crt", "app.crt", app.CertPEM},
		{prefix + "-app.key", "app.key", app.KeyPEM},
		{ilName + ".cert", ilName + ".crt", il.CertPEM},
		{ilName + ".key", ilName + ".key", il.KeyPEM},
	}
	backendSecrets := []secret{
		{prefix + "-ilpt.crt", "tls.crt", ilpt.CertPEM},
		{prefix + "-ilpt.key", "tls.key", ilpt.KeyPEM},
		{prefix + "-sgpt.crt", "tls.crt", sgpt.CertPEM},
		{prefix + "-sgpt.key", "tls.key", sgpt.KeyPEM},
	}
	var all []string
	for _, s := range slices.Concat(edgeSecrets, backendSecrets) {
		all = append(all, s.name)
	}
	docker(append([]string{"secret", "rm"}, all...)...) // leftovers of an interrupted run
	for _, s := range slices.Concat(edgeSecrets, backendSecrets) {
		createSecret(t, s.name, s.data)
	}
	// Runs last: the services that use the secrets are gone by then.
	t.Cleanup(func() { removeSecrets(t, all) })

	// Services first, so their tasks start while the edge restarts.
	createEcho(t, "tls-app", 1, map[string]string{
		"swarmgate.hosts": appHost,
		"swarmgate.port":  "8000",
		"swarmgate.tls":   "app",
	})
	createEcho(t, "tls-il", 1, map[string]string{
		"com.docker.lb.hosts":    ilHost,
		"com.docker.lb.port":     "8000",
		"com.docker.lb.network":  network,
		"com.docker.lb.ssl_cert": ilName + ".cert",
		"com.docker.lb.ssl_key":  ilName + ".key",
	})
	tlsArgs := []string{"--listen", ":8443", "--tls-cert", "/run/secrets/tls.crt", "--tls-key", "/run/secrets/tls.key"}
	createService(t, "tls-ilpt", map[string]string{
		"com.docker.lb.hosts":           ilptHost,
		"com.docker.lb.port":            "8443",
		"com.docker.lb.network":         network,
		"com.docker.lb.ssl_passthrough": "true",
	}, []string{
		"--secret", "source=" + backendSecrets[0].name + ",target=" + backendSecrets[0].target,
		"--secret", "source=" + backendSecrets[1].name + ",target=" + backendSecrets[1].target,
	}, tlsArgs...)
	createService(t, "tls-sgpt", map[string]string{
		"swarmgate.tcp.sni": sgptHost,
		"swarmgate.port":    "8443",
	}, []string{
		"--secret", "source=" + backendSecrets[2].name + ",target=" + backendSecrets[2].target,
		"--secret", "source=" + backendSecrets[3].name + ",target=" + backendSecrets[3].target,
	}, tlsArgs...)

	var add, rm []string
	for _, s := range edgeSecrets {
		add = append(add, "--secret-add", "source="+s.name+",target="+s.target)
		rm = append(rm, "--secret-rm", s.name)
	}
	updateEdge(t, add...)
	t.Cleanup(func() { updateEdge(t, rm...) })

	t.Run("SecretCertificate", func(t *testing.T) {
		c := httpsClient(edgeCA.Pool, appHost)
		resp, body := waitHTTPS(t, c, appHost, "/hello", 90*time.Second)
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", resp.Proto)
		}
		checkLeaf(t, resp.TLS, app.Cert.Raw)
		if body["service"] != prefix+"-tls-app" || body["path"] != "/hello" || body["host"] != appHost {
			t.Errorf("answer %v, want service %s-tls-app, path /hello, host %s", body, prefix, appHost)
		}
		checkRedirect(t, appHost, "/hello?x=1")
	})

	t.Run("MisdirectedHost", func(t *testing.T) {
		// A connection set up for tls.e2e.test must not carry a request for
		// il.e2e.test, which is served under another certificate.
		c := httpsClient(edgeCA.Pool, appHost)
		waitHTTPS(t, c, appHost, "/", 90*time.Second)
		req, _ := http.NewRequest("GET", "https://"+appHost+"/", nil)
		req.Host = ilHost
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("Host %s on a connection for %s: %d, want 421", ilHost, appHost, resp.StatusCode)
		}
	})

	t.Run("InterlockCertificate", func(t *testing.T) {
		c := httpsClient(edgeCA.Pool, ilHost)
		resp, body := waitHTTPS(t, c, ilHost, "/il", 90*time.Second)
		checkLeaf(t, resp.TLS, il.Cert.Raw)
		if body["service"] != prefix+"-tls-il" || body["path"] != "/il" {
			t.Errorf("answer %v, want service %s-tls-il, path /il", body, prefix)
		}
		checkRedirect(t, ilHost, "/il")
	})

	for _, tt := range []struct {
		name, host, service string
		leaf                []byte
	}{
		{"InterlockPassthrough", ilptHost, "tls-ilpt", ilpt.Cert.Raw},
		{"SNIPassthrough", sgptHost, "tls-sgpt", sgpt.Cert.Raw},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Only the backend CA is trusted: a certificate of the edge
			// fails verification.
			c := httpsClient(backendCA.Pool, tt.host)
			resp, body := waitHTTPS(t, c, tt.host, "/pt", 90*time.Second)
			checkLeaf(t, resp.TLS, tt.leaf)
			if body["service"] != prefix+"-"+tt.service || body["tls"] != "true" || body["host"] != tt.host {
				t.Errorf("answer %v, want service %s-%s over TLS for host %s", body, prefix, tt.service, tt.host)
			}
		})
	}

	t.Run("UnknownServerName", func(t *testing.T) {
		// The edge has no --default-cert and no --self-signed: nothing to
		// offer, so the handshake fails at once rather than hanging. The
		// client verifies nothing, so only the server can make it fail.
		for _, name := range []string{"unknown.e2e.test", ""} {
			start := time.Now()
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second, Deadline: time.Now().Add(10 * time.Second)},
				"tcp", edgeHTTPS, &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
			took := time.Since(start)
			if err == nil {
				cert := conn.ConnectionState().PeerCertificates[0]
				conn.Close()
				t.Fatalf("SNI %q: handshake succeeded with a certificate for %v", name, cert.DNSNames)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || took > 3*time.Second {
				t.Errorf("SNI %q: handshake failed after %s with %v; want a prompt alert", name, took, err)
			}
			t.Logf("SNI %q: %v after %s", name, err, took.Round(time.Millisecond))
		}
		// The failures leave the listener serving.
		if resp, _ := getHTTPS(httpsClient(edgeCA.Pool, appHost), appHost, "/"); resp == nil || resp.StatusCode != 200 {
			t.Errorf("after the failed handshakes %s does not answer 200: %v", appHost, resp)
		}
	})
}

// createSecret creates a Docker secret from data given on standard input,
// so that key material never appears in a command line.
func createSecret(t *testing.T, name string, data []byte) {
	t.Helper()
	cmd := exec.Command("docker", "secret", "create", name, "-")
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker secret create %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
}

// removeSecrets removes the secrets once no service refers to them any more
// (service rm returns before the engine has let go of them).
func removeSecrets(t *testing.T, names []string) {
	t.Helper()
	err := testkit.Wait(10*time.Second, 250*time.Millisecond, func() error {
		_, err := docker(append([]string{"secret", "rm"}, names...)...)
		if err == nil {
			return nil
		}
		if left, _ := docker("secret", "ls", "-q", "--filter", "name="+prefix); left == "" {
			return nil
		}
		return err
	})
	if err != nil {
		t.Errorf("secrets left behind: %v", err)
	}
}

// createService creates a labelled echo service with its own arguments (the
// harness's createEcho fixes them) and removes it when the test ends.
func createService(t *testing.T, name string, labels map[string]string, opts []string, args ...string) {
	t.Helper()
	name = prefix + "-" + name
	cmd := []string{"service", "create", "--detach", "--name", name, "--no-resolve-image",
		"--network", network, "--replicas", "1", "--env", "SERVICE=" + name, "--stop-grace-period", "2s"}
	for k, v := range labels {
		cmd = append(cmd, "--label", k+"="+v)
	}
	cmd = append(cmd, opts...)
	cmd = append(append(cmd, echoImage), args...)
	mustDocker(t, cmd...)
	t.Cleanup(func() { docker("service", "rm", name) })
}

// updateEdge applies a service update to the edge and waits until a new task
// has replaced the old one and is ready: until then /readyz may still be
// answered by the old task.
func updateEdge(t *testing.T, args ...string) {
	t.Helper()
	start := time.Now()
	old := edgeTasks(t)
	mustDocker(t, append(append([]string{"service", "update", "--detach"}, args...), edgeService)...)
	err := testkit.Wait(90*time.Second, 250*time.Millisecond, func() error {
		if now := edgeTasks(t); len(now) > 0 && !slices.ContainsFunc(now, func(id string) bool { return slices.Contains(old, id) }) {
			return nil
		}
		state, _ := docker("service", "inspect", edgeService, "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}: {{.UpdateStatus.Message}}{{end}}")
		if strings.HasPrefix(state, "paused") || strings.HasPrefix(state, "rollback") {
			t.Fatalf("edge update %v: %s", args, state)
		}
		return fmt.Errorf("edge update %v: no new running task (update %q)", args, state)
	})
	if err != nil {
		ps, _ := docker("service", "ps", "--no-trunc", edgeService)
		t.Fatalf("%v\n%s", err, ps)
	}
	if err := waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("edge replaced and ready %s after %s", time.Since(start).Round(time.Millisecond), strings.Fields(args[0])[0])
}

// edgeTasks returns the IDs of the edge's running tasks.
func edgeTasks(t *testing.T) []string {
	t.Helper()
	out, err := docker("service", "ps", edgeService, "--filter", "desired-state=running", "--format", "{{.ID}} {{.CurrentState}}")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if id, state, ok := strings.Cut(l, " "); ok && strings.HasPrefix(state, "Running") {
			ids = append(ids, id)
		}
	}
	return ids
}

// httpsClient dials the edge's HTTPS port whatever the URL's host, verifies
// the server against pool for serverName, and offers h2 and http/1.1.
func httpsClient(pool *x509.CertPool, serverName string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, edgeHTTPS)
			},
			TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// getHTTPS sends one request and decodes the echo answer of a 200.
func getHTTPS(c *http.Client, host, path string) (*http.Response, map[string]string) {
	resp, err := c.Get("https://" + host + path)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body map[string]string
	if err != nil || resp.StatusCode != 200 || json.Unmarshal(b, &body) != nil {
		return resp, nil
	}
	return resp, body
}

// waitHTTPS polls host+path over HTTPS until it answers 200 with an echo
// answer: the route and the certificate appear some time after the service.
func waitHTTPS(t *testing.T, c *http.Client, host, path string, timeout time.Duration) (*http.Response, map[string]string) {
	t.Helper()
	var resp *http.Response
	var body map[string]string
	testkit.Eventually(t, timeout, 250*time.Millisecond, func() error {
		r, err := c.Get("https://" + host + path)
		if err != nil {
			return fmt.Errorf("https://%s%s: %w", host, path, err)
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body.Close()
		var m map[string]string
		if err == nil && r.StatusCode == 200 && json.Unmarshal(b, &m) == nil {
			resp, body = r, m
			return nil
		}
		return fmt.Errorf("https://%s%s did not answer 200: %d %q %v", host, path, r.StatusCode, b, err)
	})
	return resp, body
}

// checkLeaf asserts that the server presented exactly the certificate want.
func checkLeaf(t *testing.T, cs *tls.ConnectionState, want []byte) {
	t.Helper()
	if cs == nil || len(cs.PeerCertificates) == 0 {
		t.Fatal("no TLS connection state")
	}
	if got := cs.PeerCertificates[0]; !bytes.Equal(got.Raw, want) {
		t.Errorf("served certificate %q (%v), not the expected one", got.Subject.CommonName, got.DNSNames)
	}
}

// checkRedirect asserts that plain HTTP to host is sent to the same URL over
// HTTPS with a 301.
func checkRedirect(t *testing.T, host, uri string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest("GET", "http://"+edgeHTTP+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + host + uri; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP %s%s: %d Location %q, want 301 to %s", host, uri, resp.StatusCode, resp.Header.Get("Location"), want)
	}
}
