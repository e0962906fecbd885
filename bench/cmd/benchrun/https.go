package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ---------------------------------------------------------------- HTTPS suite

// httpsProtos are the HTTPS suite's protocols, in the order of its rows.
var httpsProtos = []string{"h1", "h2", "h3"}

// speaksHTTP3 reports whether the proxy under test serves HTTP/3: of the
// targets, only swarmgate (Debian's NGINX 1.22 and HAProxy 2.6 are built
// without QUIC).
func speaksHTTP3(name string) bool { return name == "swarmgate" }

// suiteHTTPS measures requests over TLS with each protocol, on the TLS
// suite's listeners and configurations.
func (b *bench) suiteHTTPS(ctx context.Context) (string, error) {
	o := b.o
	b.logf("suite https: GET %s over TLS 1.3 with %s, %d loops, %s runs", o.bodyPath, strings.Join(httpsProtos, " "), o.tlsConns, secs(o.tlsDuration))
	defer b.stopBackend()
	if err := b.startBackend(ctx); err != nil {
		return "", err
	}
	var t table[tlsRow]
	err := b.eachProxy(ctx, "https", &t.failed, func(name string, p *proc) error {
		for _, proto := range httpsProtos {
			if proto == "h3" && !speaksHTTP3(name) {
				b.logf("%s: no HTTP/3 in this build, no h3 row", name)
				continue
			}
			row, err := b.runReq(ctx, name, proto, p)
			if err := t.add(b, "https", name, row, err); err != nil {
				return err
			}
			if proto == "h2" {
				row, err := b.runH2load(ctx, name, p)
				if err := t.add(b, "https", name, row, err); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return httpsReport(t, o), nil
}

// runReq is one reqload run of proto against p.
func (b *bench) runReq(ctx context.Context, name, proto string, p *proc) (tlsRow, error) {
	o := b.o
	argv := []string{filepath.Join(o.bin, "reqload"), "-addr", "127.0.0.1:" + strconv.Itoa(o.proxyPort), "-host", hostHeader,
		"-path", o.bodyPath, "-cert", filepath.Join(b.certs, "bench.crt"), "-proto", proto,
		"-conns", strconv.Itoa(o.tlsConns), "-duration", secs(o.tlsDuration)}
	if err := b.waitQuiet(ctx); err != nil {
		return tlsRow{}, err
	}
	r, u, err := keepQuieter(ctx, b, name, func(attempt int) (loadRun, usage, error) {
		b.logf("%s: %s requests, %d loops for %s (attempt %d)", name, proto, o.tlsConns, secs(o.tlsDuration), attempt)
		r, err := b.measured(ctx, name, p, o.tlsDuration+30*time.Second, filepath.Join(b.work, "https.out"), argv...)
		if err != nil {
			return r, usage{}, err
		}
		u := measureUsage(r.s0, r.s1, r.gen, float64(parseKeyValues(r.out).int("requests")), p != nil)
		b.rawRun(fmt.Sprintf("%s: reqload %s -conns %d -duration %s (attempt %d)", name, proto, o.tlsConns, secs(o.tlsDuration), attempt), r, u, "request", "")
		return r, u, nil
	})
	if err != nil {
		return tlsRow{}, err
	}
	kv := parseKeyValues(r.out)
	if _, ok := kv["requests"]; !ok {
		return tlsRow{}, failedRun{fmt.Sprintf("%s: %s", proto, lastLine(r.out))}
	}
	want := map[string]string{"h1": "HTTP/1.1", "h2": "HTTP/2.0", "h3": "HTTP/3.0"}[proto]
	if kv["proto"] != want {
		return tlsRow{}, failedRun{fmt.Sprintf("%s: answered over %q, not %s", proto, kv["proto"], want)}
	}
	detail := "answered over " + kv["proto"]
	if e := kv["first_error"]; e != "" {
		detail += "; first error: " + strings.ReplaceAll(e, "_", " ")
	}
	return tlsRow{
		name: name, kind: proto, rate: known(kv.float("rate"), 0).v, p50: kv.int("p50us"), p99: kv.int("p99us"),
		cpu: u.perWork, share: u.share, load: u.loadBusy, other: u.other, errors: kv.int("errors"), detail: detail,
	}, nil
}

// h2loadConns and h2loadStreams are the h2load row's shape: 4 connections
// of 32 concurrent streams each, one client thread.
const h2loadConns, h2loadStreams = 4, 32

// runH2load is the "h2load" row: nghttp2's h2load -c4 -m32 -t1 over TLS
// for TLS_DURATION seconds against p, after 200 unmeasured requests. CPU
// per request is the proxy tree's over the measured run.
func (b *bench) runH2load(ctx context.Context, name string, p *proc) (tlsRow, error) {
	o := b.o
	url := "https://" + hostHeader + o.bodyPath
	connect := "--connect-to=127.0.0.1:" + strconv.Itoa(o.proxyPort)
	argv := []string{"h2load", "-c", strconv.Itoa(h2loadConns), "-m", strconv.Itoa(h2loadStreams), "-t", "1",
		"-D", strconv.Itoa(int(o.tlsDuration / time.Second)), connect, url}
	if _, err := b.load(ctx, 30*time.Second, filepath.Join(b.work, "h2load-warm.out"),
		"h2load", "-c", strconv.Itoa(h2loadConns), "-m", strconv.Itoa(h2loadStreams), "-t", "1", "-n", "200", connect, url); err != nil {
		if ctx.Err() != nil {
			return tlsRow{}, ctx.Err()
		}
		return tlsRow{}, failedRun{"h2load: " + err.Error()}
	}
	if err := b.waitQuiet(ctx); err != nil {
		return tlsRow{}, err
	}
	r, u, err := keepQuieter(ctx, b, name, func(attempt int) (loadRun, usage, error) {
		b.logf("%s: h2load -c%d -m%d for %s (attempt %d)", name, h2loadConns, h2loadStreams, secs(o.tlsDuration), attempt)
		r, err := b.measured(ctx, name, p, o.tlsDuration+30*time.Second, filepath.Join(b.work, "h2load.out"), argv...)
		if err != nil {
			return r, usage{}, err
		}
		h := parseH2load(r.out)
		u := measureUsage(r.s0, r.s1, r.gen, float64(h.succeeded), p != nil)
		b.rawRun(fmt.Sprintf("%s: %s (attempt %d)", name, shellJoin(argv), attempt), r, u, "request", "")
		return r, u, nil
	})
	if err != nil {
		return tlsRow{}, err
	}
	h := parseH2load(r.out)
	if h.succeeded == 0 || h.protocol != "h2" {
		return tlsRow{}, failedRun{fmt.Sprintf("h2load: %d requests succeeded over %q: %s", h.succeeded, h.protocol, lastLine(r.out))}
	}
	return tlsRow{
		name: name, kind: "h2load", rate: h.rate, p50: -1, p99: -1,
		cpu: u.perWork, share: u.share, load: u.loadBusy, other: u.other, errors: h.failed,
		detail: fmt.Sprintf("h2load -c%d -m%d: %d succeeded, %d failed, over %s; mean request time %s", h2loadConns, h2loadStreams, h.succeeded, h.failed, h.protocol, h.mean),
	}, nil
}

// h2loadResult is what the h2load row takes from h2load's output.
type h2loadResult struct {
	succeeded, failed int64
	rate              float64 // req/s over the run
	protocol          string  // "Application protocol: h2"
	mean              string  // the mean of "time for request:", with its unit
}

// parseH2load reads h2load's text output; missing lines leave zeros.
func parseH2load(out string) h2loadResult {
	var r h2loadResult
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "finished in ") && len(f) >= 4:
			r.rate, _ = strconv.ParseFloat(strings.TrimSuffix(f[3], ","), 64)
		case strings.HasPrefix(line, "requests: "):
			for part := range strings.SplitSeq(strings.TrimPrefix(line, "requests: "), ",") {
				pf := strings.Fields(part)
				if len(pf) != 2 {
					continue
				}
				n, _ := strconv.ParseInt(pf[0], 10, 64)
				switch pf[1] {
				case "succeeded":
					r.succeeded = n
				case "failed":
					r.failed = n
				}
			}
		case strings.HasPrefix(line, "Application protocol:") && len(f) == 3:
			r.protocol = f[2]
		case strings.HasPrefix(line, "time for request:") && len(f) >= 6:
			r.mean = f[5]
		}
	}
	return r
}
