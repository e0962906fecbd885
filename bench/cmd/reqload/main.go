// Command reqload is the HTTPS request load generator of the side-by-side
// benchmark: N concurrent loops of GET over TLS for a fixed time, over
// HTTP/1.1 (-proto h1: one keep-alive connection per loop, as wrk), HTTP/2
// (h2: one connection, N concurrent streams, as a browser) or HTTP/3 (h3:
// quic-go's client, one QUIC connection, N concurrent streams). It prints
// one line of figures: requests, requests/s, p50/p99 latency, errors.
//
// The server's certificate is pinned, not verified against a chain (client
// CPU that tells nothing about the server), as in tlsload.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/swarmgate/swarmgate/bench/internal/benchkit"
)

func main() { benchkit.Main(run) }

// config is what one load run needs.
type config struct {
	addr     string // host:port, TCP and (h3) UDP
	url      string // what is asked for: https://HOST/PATH
	proto    string // h1, h2, h3
	pin      []byte // DER of the only certificate the server may present
	conns    int
	duration time.Duration
	timeout  time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := benchkit.FlagSet("reqload", stderr)
	addr := fs.String("addr", "127.0.0.1:19001", "server host:port (UDP too for h3)")
	host := fs.String("host", "bench.local", "Host and TLS server name")
	path := fs.String("path", "/", "path asked for")
	proto := fs.String("proto", "h2", "h1 (HTTP/1.1, a connection per loop), h2 or h3 (one connection, a stream per loop)")
	certFile := fs.String("cert", "", "PEM certificate the server must present (pinned)")
	conns := fs.Int("conns", 16, "concurrent request loops")
	duration := fs.Duration("duration", 5*time.Second, "measured time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := config{addr: *addr, url: "https://" + *host + *path, proto: *proto, conns: *conns, duration: *duration, timeout: 5 * time.Second}
	if !slices.Contains([]string{"h1", "h2", "h3"}, c.proto) {
		return fmt.Errorf("reqload: -proto must be h1, h2 or h3, got %q", c.proto)
	}
	if err := benchkit.CheckLoad("reqload", c.conns, c.duration); err != nil {
		return err
	}
	pin, err := benchkit.ReadPin("reqload", *certFile)
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
	requests int // answered 200 in the measured window
	errors   int
	firstErr error
	elapsed  time.Duration
	p50, p99 time.Duration
	proto    string // as the responses said
}

// String is one line of key=value pairs, for the benchmark script.
func (r result) String() string {
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(r.requests) / r.elapsed.Seconds()
	}
	s := fmt.Sprintf("requests=%d errors=%d elapsed=%.3f rate=%.1f p50us=%d p99us=%d proto=%s",
		r.requests, r.errors, r.elapsed.Seconds(), rate, r.p50.Microseconds(), r.p99.Microseconds(), r.proto)
	if r.firstErr != nil {
		s += " first_error=" + strings.ReplaceAll(r.firstErr.Error(), " ", "_")
	}
	return s
}

// transport returns the client of c.proto, and how to close it.
func transport(c config) (http.RoundTripper, func()) {
	tc := &tls.Config{
		InsecureSkipVerify: true, // pinned instead, see VerifyConnection
		VerifyConnection:   benchkit.VerifyPin("reqload", c.pin),
	}
	if c.proto == "h3" {
		tr := &http3.Transport{
			TLSClientConfig: tc,
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, c.addr, tc, qc)
			},
		}
		return tr, func() { tr.Close() }
	}
	tr := &http.Transport{
		TLSClientConfig: tc,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, c.addr)
		},
		MaxIdleConnsPerHost: c.conns,
		DisableCompression:  true,
		ForceAttemptHTTP2:   c.proto == "h2",
	}
	if c.proto == "h1" {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // no HTTP/2
	}
	return tr, tr.CloseIdleConnections
}

// maxSamples bounds the latency samples each loop keeps (memory).
const maxSamples = 1 << 20

// load runs c.conns request loops for c.duration, after one unmeasured
// request that sets the connection up (h2, h3) and checks the target.
func load(ctx context.Context, c config) (result, error) {
	tr, closeTr := transport(c)
	defer closeTr()
	client := &http.Client{Transport: tr, Timeout: c.timeout}
	proto, err := get(ctx, client, c.url)
	if err != nil {
		return result{}, fmt.Errorf("reqload: first request: %w", err)
	}
	start := time.Now()
	end := start.Add(c.duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	type loopResult struct {
		lat      []time.Duration
		errors   int
		firstErr error
	}
	out := make([]loopResult, c.conns)
	var wg sync.WaitGroup
	for i := range out {
		lr := &out[i]
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				if _, err := get(ctx, client, c.url); err != nil {
					if ctx.Err() != nil || !time.Now().Before(end) {
						return // cut off by the end of the run
					}
					lr.errors++
					if lr.firstErr == nil {
						lr.firstErr = err
					}
					continue
				}
				if len(lr.lat) < maxSamples {
					lr.lat = append(lr.lat, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	res := result{elapsed: time.Since(start), proto: proto}
	var all []time.Duration
	for _, lr := range out {
		all = append(all, lr.lat...)
		res.errors += lr.errors
		if res.firstErr == nil {
			res.firstErr = lr.firstErr
		}
	}
	res.requests = len(all)
	res.p50, res.p99 = benchkit.Percentile(all, 0.50), benchkit.Percentile(all, 0.99)
	return res, nil
}

// get asks for url and reads the answer; anything but 200 is an error.
func get(ctx context.Context, client *http.Client, url string) (proto string, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", fmt.Errorf("body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Proto, nil
}
