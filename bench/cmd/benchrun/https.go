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
	detail := "answered over " + kv["proto"]
	if e := kv["first_error"]; e != "" {
		detail += "; first error: " + strings.ReplaceAll(e, "_", " ")
	}
	return tlsRow{
		name: name, kind: proto, rate: known(kv.float("rate"), 0).v, p50: kv.int("p50us"), p99: kv.int("p99us"),
		cpu: u.perWork, share: u.share, load: u.loadBusy, other: u.other, errors: kv.int("errors"), detail: detail,
	}, nil
}
