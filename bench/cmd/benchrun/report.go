package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The tables are fixed-width text, one row per target (per target and
// handshake kind in the TLS suite), as bench/README.md quotes them. Ratios
// are to NGINX's row; each is "-" without one.

// httpRow is one target of the HTTP suite.
type httpRow struct {
	name         string
	body         string  // the bodies suite's body: small, 1k, 64k
	rps          float64 // wrk, whole
	p50, p99     float64 // vegeta, µs, whole
	cpu, cpuRate value   // proxy CPU µs per request during wrk, during vegeta
	share, load  value   // prx%, ld% of the wrk run
	other        float64 // oth%, the larger of the two runs'
	errors       int64
	detail       string
}

// table is one suite's rows, and its FAILED rows.
type table[R any] struct {
	rows   []R
	failed []failure
}

// add records the outcome of measuring name: row, or a FAILED row if err
// is a failedRun. Any other error is returned: it ends the suite.
func (t *table[R]) add(b *bench, suite, name string, row R, err error) error {
	var f failedRun
	switch {
	case errors.As(err, &f):
		b.fail(suite, name, f.reason, &t.failed)
		return nil
	case err != nil:
		return err
	}
	t.rows = append(t.rows, row)
	return nil
}

func (t *table[R]) empty() bool { return len(t.rows) == 0 && len(t.failed) == 0 }

// httpReport is the HTTP suite's table; it has a header even when empty.
func httpReport(t table[httpRow], o options) string {
	var ngRPS, ngCPU, ngP99 value
	for _, r := range t.rows {
		if r.name == "nginx" {
			ngRPS, ngCPU, ngP99 = known(r.rps, 0), r.cpu, known(r.p99, 0)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %8s %7s %7s %7s %7s %5s %5s %5s %6s | %6s %6s %6s | %s\n",
		"target", "req/s", "p50us", "p99us", "cpu/req", "@rate", "prx%", "ld%", "oth%", "bound",
		"thr/ng", "cpu/ng", "p99/ng", "errors")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "%-10s %8.0f %7.0f %7.0f %7s %7s %5s %5s %5.0f %6s | %6s %6s %6s | %d\n",
			r.name, r.rps, r.p50, r.p99, r.cpu, r.cpuRate, r.share, r.load, r.other, bound(r.other, r.share),
			ratio(known(r.rps, 0), ngRPS), ratio(r.cpu, ngCPU), ratio(known(r.p99, 0), ngP99), r.errors)
	}
	writeFailed(&b, t.failed)
	b.WriteString("\nerrors:\n")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "  %-10s %s\n", r.name, r.detail)
	}
	fmt.Fprintf(&b, `
req/s: wrk max throughput (closed loop, %d connections). p50us/p99us: vegeta latency
at a fixed %d req/s (open loop). cpu/req: the proxy's user+system CPU in µs per request
during the wrk run (@rate: during the vegeta run). prx%%: the proxy's share of core
%d during the wrk run; ld%%: core %d busy (backend + load generator);
oth%%: the largest share of either core taken by other processes. bound: what limited the
wrk run (proxy: it had >= 90%% of its core; load: the load core saturated first, so req/s
is a lower bound; noisy: oth%% > %d, figures disturbed). x/ng: ratio to NGINX.
`, o.conns, o.rate, o.proxyCPU, o.loadCPU, noise)
	return b.String()
}

// tlsRow is one target and handshake kind of the TLS suite.
type tlsRow struct {
	name        string
	kind        string  // "1.3 full", "1.2 resumed"
	rate        float64 // handshakes/s, whole
	p50, p99    int64   // µs
	cpu         value   // proxy CPU µs per handshake
	share, load value
	other       float64
	errors      int64
	detail      string
}

// tlsReport is the TLS suite's table, "" if it has no row.
func tlsReport(t table[tlsRow], o options) string {
	if t.empty() {
		return ""
	}
	b := kindTable(t, [4]string{"handshake", "hs/s", "cpu/hs", "hs/core"})
	fmt.Fprintf(b, `
hs/s: handshakes completed per second by tlsload (%d concurrent loops of connect,
handshake, close_notify, read to EOF; ECDSA P-256 certificate, X25519 key exchange).
p50us/p99us: connect + handshake time. full: no session cache; resumed: session tickets
(a refused ticket counts as an error). cpu/hs: the proxy's CPU in µs per handshake;
hs/core = 1e6 / cpu/hs, the handshakes one core would sustain. prx%%, ld%%, oth%%, bound
as in the HTTP table (bound = load: tlsload's core saturated first, hs/s is a lower
bound). x/ng: ratio to NGINX for the same handshake kind.
`, o.tlsConns)
	return b.String()
}

// kindTable renders the rows of a suite whose targets have a row for each
// kind of work (a handshake kind, a protocol), with ratios to NGINX's row of
// the same kind; cols names the kind, rate, CPU per unit and units per core
// columns.
func kindTable(t table[tlsRow], cols [4]string) *strings.Builder {
	ngRate, ngCPU := map[string]value{}, map[string]value{}
	for _, r := range t.rows {
		if r.name == "nginx" {
			ngRate[r.kind], ngCPU[r.kind] = known(r.rate, 0), r.cpu
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-11s %7s %7s %7s %7s %8s %5s %5s %5s %6s | %6s %6s | %s\n",
		"target", cols[0], cols[1], "p50us", "p99us", cols[2], cols[3], "prx%", "ld%", "oth%", "bound",
		"thr/ng", "cpu/ng", "errors")
	for _, r := range t.rows {
		perCore := value{}
		if r.cpu.ok && r.cpu.v > 0 {
			perCore = known(1e6/r.cpu.v, 0)
		}
		fmt.Fprintf(&b, "%-10s %-11s %7.0f %7s %7s %7s %8s %5s %5s %5.0f %6s | %6s %6s | %d\n",
			r.name, r.kind, r.rate, micros(r.p50), micros(r.p99), r.cpu, perCore, r.share, r.load, r.other, bound(r.other, r.share),
			ratio(known(r.rate, 0), ngRate[r.kind]), ratio(r.cpu, ngCPU[r.kind]), r.errors)
	}
	writeFailed(&b, t.failed)
	b.WriteString("\ndetails:\n")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "  %-10s %-11s %s\n", r.name, r.kind, r.detail)
	}
	return &b
}

// httpsReport is the HTTPS suite's table, "" if it has no row.
func httpsReport(t table[tlsRow], o options) string {
	if t.empty() {
		return ""
	}
	b := kindTable(t, [4]string{"protocol", "req/s", "cpu/req", "req/core"})
	fmt.Fprintf(b, `
req/s: requests answered per second to reqload (%d concurrent loops of GET over TLS 1.3:
h1 one keep-alive connection per loop, h2 one connection with a stream per loop, h3 one
QUIC connection with a stream per loop; quic-go's client); h2load: nghttp2's h2load
-c%d -m%d -t1 (4 connections of 32 streams, one thread; it reports no percentiles, the
details give its mean). p50us/p99us: request time.
cpu/req: the proxy's CPU in µs per request; req/core = 1e6 / cpu/req. prx%%, ld%%, oth%%,
bound as in the HTTP table. x/ng: ratio to NGINX for the same protocol (NGINX 1.22 and
HAProxy 2.6 as Debian builds them have no HTTP/3: swarmgate's h3 row has no ratio).
`, o.tlsConns, h2loadConns, h2loadStreams)
	return b.String()
}

// l4Row is one target of the L4 suite.
type l4Row struct {
	name           string
	gbps           float64 // as l4load printed it (3 decimals)
	cpu            value   // proxy CPU seconds per 10^9 bytes
	share, load    value
	other          float64
	bytes, elapsed string // as l4load printed them
}

// l4Report is the L4 suite's table, "" if it has no row.
func l4Report(t table[l4Row], o options) string {
	if t.empty() {
		return ""
	}
	var ngGbps, ngCPU value
	for _, r := range t.rows {
		if r.name == "nginx" {
			ngGbps, ngCPU = known(r.gbps, 3), r.cpu
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %7s %9s %5s %5s %5s %6s | %6s %6s | %s\n",
		"target", "Gbit/s", "cpu-s/GB", "prx%", "ld%", "oth%", "bound", "thr/ng", "cpu/ng", "bytes in s")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "%-10s %7.2f %9s %5s %5s %5.0f %6s | %6s %6s | %s in %s\n",
			r.name, r.gbps, r.cpu, r.share, r.load, r.other, bound(r.other, r.share),
			ratio(known(r.gbps, 3), ngGbps), ratio(r.cpu, ngCPU), r.bytes, r.elapsed)
	}
	writeFailed(&b, t.failed)
	fmt.Fprintf(&b, `
Gbit/s: bytes the sink acknowledged (l4load, segments of 64 MiB with a byte count
checked per segment) over the transfer time, %d connection(s). cpu-s/GB: the
proxy's CPU seconds per 10^9 bytes carried. prx%%, ld%%, oth%%, bound as in the HTTP table
(ld%%: l4load's source and sink on core %d). x/ng: ratio to NGINX.
`, o.l4Conns, o.loadCPU)
	return b.String()
}

// writeFailed lists the FAILED rows under a table.
func writeFailed(b *strings.Builder, failed []failure) {
	for _, f := range failed {
		fmt.Fprintf(b, "%-10s FAILED: %s: %s\n", "", f.name, f.reason)
	}
}

// slowReport is the slow suite's table, "" if it has no row.
func slowReport(t table[slowRow], o options) string {
	if t.empty() {
		return ""
	}
	type ng struct{ upstream, fds, rss value }
	ngOf := map[string]ng{}
	for _, r := range t.rows {
		if r.name == "nginx" {
			ngOf[r.attack] = ng{known(float64(r.peak.upstream), 0), known(float64(r.peak.fds), 0), mib(r.peak.rssKiB)}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-8s %9s %5s %6s %5s %5s %7s %6s %5s | %6s %6s %6s | %s\n",
		"target", "attack", "unavail", "open", "closed", "upstr", "fds", "rss-MiB", "cpu-s", "oth%",
		"up/ng", "fds/ng", "rss/ng", "exit")
	for _, r := range t.rows {
		n := ngOf[r.attack]
		fmt.Fprintf(&b, "%-10s %-8s %9s %5d %6d %5d %5d %7s %6.2f %5.0f | %6s %6s %6s | %s\n",
			r.name, r.attack, fmt.Sprintf("%d/%d", r.slow.unavailable, r.slow.samples), r.slow.connected, r.slow.closed,
			r.peak.upstream, r.peak.fds, mib(r.peak.rssKiB), r.cpu, r.other,
			ratio(known(float64(r.peak.upstream), 0), n.upstream), ratio(known(float64(r.peak.fds), 0), n.fds),
			ratio(mib(r.peak.rssKiB), n.rss), r.slow.exit)
	}
	writeFailed(&b, t.failed)
	b.WriteString("\nbefore each attack (idle):\n")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "  %-10s %-8s upstr %d, fds %d, rss %s MiB; %d footprint samples%s\n",
			r.name, r.attack, r.idle.upstream, r.idle.fds, mib(r.idle.rssKiB), r.samples, prefixed("; ", r.extra))
	}
	fmt.Fprintf(&b, `
slowhttptest, %d connections (%d/s) for %d s per attack, each on a freshly started proxy:
headers (slowloris: a header line every 10 s), body (POST of 8 KiB, a few bytes every
10 s), read (a GET of 64 KiB read 32 bytes/s through a window of at most 512 bytes).
unavail: seconds in which slowhttptest counted the target unavailable (its probe, a GET
every %d s, had no answer within %d s), of its samples. open: most attack connections open
at once; closed: closed by the end (by the proxy, or refused). upstr, fds, rss-MiB: peak,
sampled every second, of ESTABLISHED connections to the backend's port (/proc/net/tcp),
of the proxy tree's open fds (/proc/PID/fd) and of its VmRSS (NGINX: master + worker).
cpu-s: the proxy's CPU seconds during the attack. oth%% as in the HTTP table. x/ng: ratio
to NGINX for the same attack. exit: slowhttptest's exit status.
`, o.slowConns, slowRate, int(o.slowDuration/time.Second), slowProbe, slowProbe)
	return b.String()
}

// micros is a latency in µs, "-" when the tool gives none (negative).
func micros(us int64) string {
	if us < 0 {
		return "-"
	}
	return strconv.FormatInt(us, 10)
}

// mib is kib in MiB, with one decimal.
func mib(kib int64) value { return known(float64(kib)/1024, 1) }

// prefixed is p+s, or "" if s is.
func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
