package testkit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PebbleVersion is the Pebble release the tests run.
const PebbleVersion = "v2.10.1"

// PebbleValidity is the lifetime of the certificates Pebble issues,
// Let's Encrypt's classic 90 days. It is long so that no certificate is due
// for renewal while a test runs: Pebble's ACME Renewal Info (ARI) suggests
// renewing from a day before two thirds of the lifetime (core.RenewalInfoSimple),
// never earlier than the certificate's NotBefore, and certmagic renews once
// the time it picks at random in that window is less than its check
// interval (10 minutes) away. With a lifetime under 36 hours the window
// opens at issuance, so a certificate could be renewed on its first
// handshakes: with the one day this used to be, about one certificate in
// 140 (ten minutes in a day), and TestFleetACMEPebble, which compares
// serials and counts orders across a restart, failed about one run in 35.
const PebbleValidity = 90 * 24 * time.Hour

// ServeDNS answers A queries for hosts with 127.0.0.1 over TCP (Pebble's
// resolver uses TCP), AAAA queries with no records and everything else
// with NXDOMAIN. It speaks just enough of RFC 1035 for that.
func ServeDNS(t testing.TB, hosts []string) string {
	known := map[string]bool{}
	for _, h := range hosts {
		known[h] = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeConns(t, ln, 10*time.Second, func(c net.Conn) {
		for {
			var n uint16
			if binary.Read(c, binary.BigEndian, &n) != nil {
				return
			}
			q := make([]byte, n)
			if _, err := io.ReadFull(c, q); err != nil {
				return
			}
			resp := dnsAnswer(q, known)
			if resp == nil {
				return
			}
			_ = binary.Write(c, binary.BigEndian, uint16(len(resp)))
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
	return ln.Addr().String()
}

func dnsAnswer(q []byte, known map[string]bool) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	i++ // the root label
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, "."))
	var rcode, ancount uint16
	switch {
	case !known[name]:
		rcode = 3 // NXDOMAIN
	case qtype == 1: // A
		ancount = 1
	}
	resp := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(q[0:2]))
	resp = binary.BigEndian.AppendUint16(resp, 0x8400|binary.BigEndian.Uint16(q[2:4])&0x0100|rcode) // QR, AA, RD copied
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, ancount)
	resp = append(resp, 0, 0, 0, 0) // NSCOUNT, ARCOUNT
	resp = append(resp, question...)
	if ancount == 1 {
		resp = append(resp, 0xc0, 12) // name: pointer to the question
		resp = binary.BigEndian.AppendUint16(resp, 1)
		resp = binary.BigEndian.AppendUint16(resp, 1)
		resp = binary.BigEndian.AppendUint32(resp, 60)
		resp = binary.BigEndian.AppendUint16(resp, 4)
		resp = append(resp, 127, 0, 0, 1)
	}
	return resp
}

// Pebble is a running Pebble server (github.com/letsencrypt/pebble), an
// ACME CA for tests whose validation authority really connects.
type Pebble struct {
	Directory  string         // the ACME directory URL
	Mgmt       string         // the management API's base URL
	APIRoots   *x509.CertPool // the roots of Pebble's own HTTPS API
	APIRootPEM []byte         // the same, PEM-encoded (edge --acme-ca)
	MgmtClient *http.Client   // a client of both APIs
	out        *SyncBuffer
}

// Output returns what Pebble printed so far.
func (p *Pebble) Output() string { return p.out.String() }

// PebbleBinary finds pebble, installing it with go install if needed.
// When CI=true a missing Pebble fails the test instead of skipping it.
func PebbleBinary(t testing.TB) string {
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("pebble is required in CI: "+format, args...)
		}
		t.Skipf("pebble unavailable: "+format, args...)
	}
	if p, err := exec.LookPath("pebble"); err == nil {
		return p
	}
	gobin, err := goEnv("GOBIN")
	if err == nil && gobin == "" {
		var gopath string
		gopath, err = goEnv("GOPATH")
		gobin = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin")
	}
	if err != nil {
		unavailable("go env: %v", err)
	}
	bin := filepath.Join(gobin, "pebble")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+PebbleVersion)
	cmd.Dir = t.TempDir() // outside this module
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable("go install: %v\n%s", err, out)
	}
	return bin
}

func goEnv(key string) (string, error) {
	out, err := exec.Command("go", "env", key).Output()
	return strings.TrimSpace(string(out)), err
}

// StartPebble runs Pebble on loopback with a generated configuration and
// API certificate, and waits until its directory answers.
func StartPebble(t testing.TB, bin string, httpPort, tlsPort int, dnsAddr string) *Pebble {
	return StartPebbleOn(t, bin, "127.0.0.1", httpPort, tlsPort, dnsAddr)
}

// StartPebbleOn is StartPebble with the API on host, an IP address (for
// clients in containers: the Docker bridge's gateway).
func StartPebbleOn(t testing.TB, bin, host string, httpPort, tlsPort int, dnsAddr string) *Pebble {
	dir := t.TempDir()
	apiCA := NewCA(t, "pebble API test CA")
	names := []string{"127.0.0.1"} // the management API's address
	if host != "127.0.0.1" {
		names = append(names, host)
	}
	api := apiCA.Issue(t, names...)
	certFile := WriteFile(t, dir, "cert.pem", api.CertPEM)
	keyFile := WriteFile(t, dir, "key.pem", api.KeyPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: apiCA.Pool}, DisableKeepAlives: true}}

	// Pebble binds its own API ports: take free ones, and retry if another
	// process wins the race for one of them.
	for attempt := 1; ; attempt++ {
		apiPort, mgmtPort := freePort(t), freePort(t)
		cfg := map[string]any{"pebble": map[string]any{
			"listenAddress":                  net.JoinHostPort(host, strconv.Itoa(apiPort)),
			"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
			"certificate":                    certFile,
			"privateKey":                     keyFile,
			"httpPort":                       httpPort,
			"tlsPort":                        tlsPort,
			"ocspResponderURL":               "",
			"externalAccountBindingRequired": false,
			"keyAlgorithm":                   "ecdsa",
			"profiles": map[string]any{"default": map[string]any{
				"description": "test", "validityPeriod": int64(PebbleValidity / time.Second)}},
		}}
		cfgJSON, _ := json.Marshal(cfg)
		cfgFile := filepath.Join(dir, "pebble-config.json")
		if err := os.WriteFile(cfgFile, cfgJSON, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "-config", cfgFile, "-dnsserver", dnsAddr)
		cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
		var out SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			if os.Getenv("CI") == "true" {
				t.Fatalf("start pebble: %v", err)
			}
			t.Skipf("start pebble: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() { cancel(); <-exited }
		p := &Pebble{
			Directory:  "https://" + net.JoinHostPort(host, strconv.Itoa(apiPort)) + "/dir",
			Mgmt:       fmt.Sprintf("https://127.0.0.1:%d", mgmtPort),
			APIRoots:   apiCA.Pool,
			APIRootPEM: apiCA.PEM,
			MgmtClient: client,
			out:        &out,
		}
		if waitReady(client, p.Directory, exited) {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("pebble output:\n%s", out.String())
				}
			})
			return p
		}
		stop()
		if attempt == 3 {
			t.Fatalf("pebble did not start:\n%s", out.String())
		}
	}
}

// waitReady polls the directory until it answers, Pebble exits or 15s pass.
func waitReady(c *http.Client, url string, exited <-chan struct{}) bool {
	gone := false
	err := Wait(15*time.Second, 50*time.Millisecond, func() error {
		select {
		case <-exited:
			gone = true
			return nil // nothing more to wait for
		default:
		}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("pebble directory: %s", resp.Status)
		}
		return nil
	})
	return err == nil && !gone
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// IssuerRoots returns the roots Pebble signs certificates with.
func (p *Pebble) IssuerRoots(t testing.TB) *x509.CertPool {
	resp, err := p.MgmtClient.Get(p.Mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble roots: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("pebble roots: no certificate")
	}
	return pool
}

// NewOrderURL reads the newOrder endpoint from the directory.
func (p *Pebble) NewOrderURL(t testing.TB) string {
	resp, err := p.MgmtClient.Get(p.Directory)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir struct{ NewOrder string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&dir); err != nil || dir.NewOrder == "" {
		t.Fatalf("pebble directory: newOrder %q, %v", dir.NewOrder, err)
	}
	return dir.NewOrder
}

// SyncBuffer is a bytes.Buffer safe for one writer (a process's output)
// and readers at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ServeConns accepts connections on ln until the test ends and runs handle
// on each, on its own goroutine, with a deadline of timeout; the cleanup
// closes ln and waits for every handler.
func ServeConns(t testing.TB, ln net.Listener, timeout time.Duration, handle func(net.Conn)) {
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
				_ = c.SetDeadline(time.Now().Add(timeout))
				handle(c)
			})
		}
	})
}
