// Command tlsload is the TLS handshake load generator of the side-by-side
// benchmark: N concurrent loops that each connect, complete a TLS handshake
// and close, for a fixed time, then print one line of figures (handshakes,
// handshakes/s, p50/p99 handshake latency, resumption count, errors).
//
// Full handshakes use no session cache, so every connection pays for the
// certificate signature and the key exchange. Resumed handshakes share a
// client session cache: one priming handshake before the clock starts, then
// every connection offers a session ticket (TLS 1.3 PSK with a fresh key
// exchange, or a TLS 1.2 ticket) and is counted as resumed only if the server
// accepted it.
//
// Each connection ends with a close_notify and a read to EOF: that way the
// server has processed the client's Finished and sent its session tickets
// (which the client stores, as a browser does) before the loop moves on, and
// a handshake is only counted once the server has finished it too.
//
// tlsload -gencert DIR writes DIR/bench.crt and DIR/bench.key, a self-signed
// ECDSA P-256 certificate for -sni, for the proxies under test.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/bench/internal/benchkit"
)

func main() { benchkit.Main(run) }

// config is what one load run needs.
type config struct {
	addr     string
	sni      string
	pin      []byte // DER of the only certificate the server may present
	conns    int
	duration time.Duration
	resume   bool
	version  uint16
	curves   []tls.CurveID
	timeout  time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := benchkit.FlagSet("tlsload", stderr)
	addr := fs.String("addr", "127.0.0.1:19001", "server host:port")
	sni := fs.String("sni", "bench.local", "TLS server name")
	certFile := fs.String("cert", "", "PEM certificate the server must present (pinned: no chain verification cost on the client)")
	conns := fs.Int("conns", 16, "concurrent handshake loops")
	duration := fs.Duration("duration", 5*time.Second, "measured time")
	resume := fs.Bool("resume", false, "resume sessions (tickets) instead of full handshakes")
	version := fs.String("tls", "1.3", "TLS version: 1.3 or 1.2")
	curve := fs.String("curve", "x25519", "key exchange: x25519 (X25519, P-256 offered second) or p256 (P-256 only)")
	gencert := fs.String("gencert", "", "write DIR/bench.crt and DIR/bench.key (ECDSA P-256, for -sni) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *gencert != "" {
		return genCert(*gencert, *sni)
	}
	c := config{addr: *addr, sni: *sni, conns: *conns, duration: *duration, resume: *resume, timeout: 5 * time.Second}
	switch *version {
	case "1.3":
		c.version = tls.VersionTLS13
	case "1.2":
		c.version = tls.VersionTLS12
	default:
		return fmt.Errorf("tlsload: -tls must be 1.3 or 1.2, got %q", *version)
	}
	switch *curve {
	case "x25519":
		// P-256 is offered too, second: in TLS 1.2 the client's groups also
		// say which ECDSA certificate curves it accepts, and OpenSSL refuses
		// a P-256 certificate to a client that lists X25519 only. Key
		// exchange stays X25519 (TLS 1.3 sends only its key share).
		c.curves = []tls.CurveID{tls.X25519, tls.CurveP256}
	case "p256":
		c.curves = []tls.CurveID{tls.CurveP256}
	default:
		return fmt.Errorf("tlsload: -curve must be x25519 or p256, got %q", *curve)
	}
	if err := benchkit.CheckLoad("tlsload", c.conns, c.duration); err != nil {
		return err
	}
	pin, err := benchkit.ReadPin("tlsload", *certFile)
	if err != nil {
		return err
	}
	c.pin = pin
	res, err := load(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.String())
	return nil
}

// result is the outcome of one load run.
type result struct {
	handshakes int // completed, in the measured window
	resumed    int // of which the server accepted the session
	errors     int
	firstErr   error
	elapsed    time.Duration
	p50, p99   time.Duration
}

// String is one line of key=value pairs, for the benchmark script.
func (r result) String() string {
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(r.handshakes) / r.elapsed.Seconds()
	}
	s := fmt.Sprintf("handshakes=%d resumed=%d errors=%d elapsed=%.3f rate=%.1f p50us=%d p99us=%d",
		r.handshakes, r.resumed, r.errors, r.elapsed.Seconds(), rate, r.p50.Microseconds(), r.p99.Microseconds())
	if r.firstErr != nil {
		s += " first_error=" + strings.ReplaceAll(r.firstErr.Error(), " ", "_")
	}
	return s
}

// maxSamples bounds the latency samples each loop keeps (memory), far above
// what a loop completes in the run times the benchmark uses.
const maxSamples = 1 << 20

// load runs c.conns handshake loops for c.duration.
func load(ctx context.Context, c config) (result, error) {
	tc := &tls.Config{
		ServerName:       c.sni,
		MinVersion:       c.version,
		MaxVersion:       c.version,
		CurvePreferences: c.curves,
		NextProtos:       []string{"http/1.1"},
		// The chain is not verified (that is client CPU, on the load core,
		// that tells nothing about the server); the server must present
		// exactly the benchmark's certificate instead, and the handshake
		// signature is still checked by crypto/tls.
		InsecureSkipVerify: true,
		VerifyConnection:   benchkit.VerifyPin("tlsload", c.pin),
	}
	if c.resume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(64)
		// Prime the cache: this full handshake is not measured.
		if _, _, err := handshake(ctx, c, tc); err != nil {
			return result{}, fmt.Errorf("tlsload: priming handshake: %w", err)
		}
	}
	// The end is checked against the clock, not only ctx.Err(): once the
	// deadline has passed, a dial fails at once with a timeout, which may be
	// before the context's timer has fired and set ctx.Err().
	start := time.Now()
	end := start.Add(c.duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	type loopResult struct {
		lat      []time.Duration
		resumed  int
		errors   int
		firstErr error
	}
	out := make([]loopResult, c.conns)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func(lr *loopResult) {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				d, resumed, err := handshake(ctx, c, tc)
				if err != nil {
					if ctx.Err() != nil || !time.Now().Before(end) {
						return // cut off by the end of the run, not a failure
					}
					lr.errors++
					if lr.firstErr == nil {
						lr.firstErr = err
					}
					continue
				}
				if len(lr.lat) < maxSamples {
					lr.lat = append(lr.lat, d)
				}
				if resumed {
					lr.resumed++
				}
			}
		}(&out[i])
	}
	wg.Wait()
	res := result{elapsed: time.Since(start)}
	var all []time.Duration
	for _, lr := range out {
		all = append(all, lr.lat...)
		res.resumed += lr.resumed
		res.errors += lr.errors
		if res.firstErr == nil {
			res.firstErr = lr.firstErr
		}
	}
	res.handshakes = len(all)
	res.p50, res.p99 = benchkit.Percentile(all, 0.50), benchkit.Percentile(all, 0.99)
	return res, nil
}

// handshake connects, completes the handshake, sends close_notify and reads
// until the server closes. It returns the time from dial to handshake done.
func handshake(ctx context.Context, c config, tc *tls.Config) (time.Duration, bool, error) {
	start := time.Now()
	d := net.Dialer{Timeout: c.timeout}
	raw, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return 0, false, fmt.Errorf("dial: %w", err)
	}
	defer raw.Close()
	if err := raw.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, false, fmt.Errorf("deadline: %w", err)
	}
	conn := tls.Client(raw, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		return 0, false, fmt.Errorf("handshake: %w", err)
	}
	took := time.Since(start)
	resumed := conn.ConnectionState().DidResume
	if err := conn.CloseWrite(); err != nil {
		return 0, false, fmt.Errorf("close_notify: %w", err)
	}
	// Session tickets arrive here; a reset or an error after the server's
	// own close is the server's way of closing and does not undo the
	// handshake, but a timeout means the server never finished it.
	if _, err := io.Copy(io.Discard, conn); err != nil && isTimeout(err) {
		return 0, false, fmt.Errorf("waiting for the server to close: %w", err)
	}
	return took, resumed, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// genCert writes a self-signed ECDSA P-256 certificate for name, valid for
// two days, as DIR/bench.crt and DIR/bench.key.
func genCert(dir, name string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tlsload: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return fmt.Errorf("tlsload: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("tlsload: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlsload: key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlsload: %w", err)
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "bench.crt"), crt, 0o644); err != nil {
		return fmt.Errorf("tlsload: %w", err)
	}
	k := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(dir, "bench.key"), k, 0o600); err != nil {
		return fmt.Errorf("tlsload: %w", err)
	}
	return nil
}
