package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ---------------------------------------------------------------- bodies suite

// suiteBodies measures the HTTP suite's rows (wrk, vegeta, CPU per request)
// for each of -bodies, keep-alive: one table with a row per target and
// body, ratios to NGINX's row of the same body. The HTTP suite's rows of
// the same run, for its -body, are taken as they are instead of measured
// again.
func (b *bench) suiteBodies(ctx context.Context) (string, error) {
	o := b.o
	b.logf("suite bodies: %s, %d connections, %s runs, vegeta at %d/s", strings.Join(o.bodies, " "), o.conns, secs(o.duration), o.rate)
	defer b.stopBackend()
	if err := b.startBackend(ctx); err != nil {
		return "", err
	}
	var t table[httpRow]
	var measure []string
	for _, body := range o.bodies {
		reused := false
		for _, r := range b.httpRows {
			if r.body == body {
				t.rows = append(t.rows, r)
				reused = true
			}
		}
		if reused {
			b.logf("bodies: the %s rows are the HTTP suite's of this run", body)
			continue
		}
		measure = append(measure, body)
	}
	for _, body := range measure {
		row, err := b.measureHTTPOf(ctx, "direct", o.backendPort, nil, bodyPaths[body], false)
		if err != nil {
			return "", err
		}
		row.body = body
		t.rows = append(t.rows, row)
	}
	err := b.eachProxy(ctx, "bodies", &t.failed, func(name string, p *proc) error {
		for _, body := range measure {
			row, err := b.measureHTTPOf(ctx, name+" "+body, o.proxyPort, p, bodyPaths[body], false)
			row.name, row.body = name, body
			if err := t.add(b, "bodies", name, row, err); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return bodiesReport(t, o), nil
}

// bodiesReport is the bodies suite's table, rows ordered by body then as
// measured.
func bodiesReport(t table[httpRow], o options) string {
	type ng struct{ rps, cpu, rate, p99 value }
	ngOf := map[string]ng{}
	for _, r := range t.rows {
		if r.name == "nginx" {
			ngOf[r.body] = ng{known(r.rps, 0), r.cpu, r.cpuRate, known(r.p99, 0)}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-5s %8s %7s %7s %7s %7s %5s %5s %5s %6s | %6s %6s %6s %6s | %s\n",
		"target", "body", "req/s", "p50us", "p99us", "cpu/req", "@rate", "prx%", "ld%", "oth%", "bound",
		"thr/ng", "cpu/ng", "@r/ng", "p99/ng", "errors")
	for _, body := range o.bodies {
		n := ngOf[body]
		for _, r := range t.rows {
			if r.body != body {
				continue
			}
			fmt.Fprintf(&b, "%-10s %-5s %8.0f %7.0f %7.0f %7s %7s %5s %5s %5.0f %6s | %6s %6s %6s %6s | %d\n",
				r.name, r.body, r.rps, r.p50, r.p99, r.cpu, r.cpuRate, r.share, r.load, r.other, bound(r.other, r.share),
				ratio(known(r.rps, 0), n.rps), ratio(r.cpu, n.cpu), ratio(r.cpuRate, n.rate), ratio(known(r.p99, 0), n.p99), r.errors)
		}
	}
	writeFailed(&b, t.failed)
	b.WriteString("\nerrors:\n")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "  %-10s %-5s %s\n", r.name, r.body, r.detail)
	}
	fmt.Fprintf(&b, `
The HTTP table's figures for each response body (small: 13 bytes, 1k: 1 KiB, 64k:
64 KiB), keep-alive, %d connections; vegeta at %d req/s. x/ng: ratio to NGINX's row of
the same body (@r/ng: of cpu/req at the fixed rate).
`, o.conns, o.rate)
	return b.String()
}

// ---------------------------------------------------------------- close suite

// suiteClose measures throughput and CPU per request with a new connection
// per request: wrk's requests carry Connection: close.
func (b *bench) suiteClose(ctx context.Context) (string, error) {
	o := b.o
	b.logf("suite close: body %s, Connection: close, %d connections, %s runs", o.body, o.conns, secs(o.duration))
	defer b.stopBackend()
	if err := b.startBackend(ctx); err != nil {
		return "", err
	}
	var t table[httpRow]
	row, err := b.measureHTTPOf(ctx, "direct", o.backendPort, nil, o.bodyPath, true)
	if err != nil {
		return "", err
	}
	t.rows = append(t.rows, row)
	err = b.eachProxy(ctx, "close", &t.failed, func(name string, p *proc) error {
		row, err := b.measureHTTPOf(ctx, name, o.proxyPort, p, o.bodyPath, true)
		return t.add(b, "close", name, row, err)
	})
	if err != nil {
		return "", err
	}
	return closeReport(t, o), nil
}

func closeReport(t table[httpRow], o options) string {
	var ngRPS, ngCPU value
	for _, r := range t.rows {
		if r.name == "nginx" {
			ngRPS, ngCPU = known(r.rps, 0), r.cpu
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %8s %7s %8s %5s %5s %5s %6s | %6s %6s | %s\n",
		"target", "req/s", "cpu/req", "req/core", "prx%", "ld%", "oth%", "bound", "thr/ng", "cpu/ng", "errors")
	for _, r := range t.rows {
		perCore := value{}
		if r.cpu.ok && r.cpu.v > 0 {
			perCore = known(1e6/r.cpu.v, 0)
		}
		fmt.Fprintf(&b, "%-10s %8.0f %7s %8s %5s %5s %5.0f %6s | %6s %6s | %d\n",
			r.name, r.rps, r.cpu, perCore, r.share, r.load, r.other, bound(r.other, r.share),
			ratio(known(r.rps, 0), ngRPS), ratio(r.cpu, ngCPU), r.errors)
	}
	writeFailed(&b, t.failed)
	b.WriteString("\nerrors:\n")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "  %-10s %s\n", r.name, r.detail)
	}
	fmt.Fprintf(&b, `
A new connection per request: wrk -t1 -c%d with Connection: close on every request
(body %s), so each request pays a TCP connect, accept and close on the proxy's client
side (the proxies keep their upstream connections). req/s, cpu/req (the proxy's CPU µs
per request), req/core = 1e6 / cpu/req, prx%%, ld%%, oth%%, bound as in the HTTP table.
`, o.conns, o.body)
	return b.String()
}

// ---------------------------------------------------------------- idle and ws suites

// holdSeconds is about how long one target of the idle or ws suite takes:
// opening the connections, the settle time, the re-check.
const holdSeconds = 15

// holdSettle is how long the connections stay open before the RSS is read.
const holdSettle = 2 * time.Second

// holdRow is one target of the idle or ws suite.
type holdRow struct {
	name           string
	opened, want   int
	before, during int64 // the proxy tree's VmRSS, KiB
	rechecked      int
	openSeconds    float64
	other          float64
	detail         string
}

// perConn is the RSS the proxy took per held connection, in KiB.
func (r holdRow) perConn() value {
	if r.opened == 0 {
		return value{}
	}
	return known(float64(r.during-r.before)/float64(r.opened), 2)
}

// suiteHold opens -idle-conns idle keep-alive connections (idle) or
// -ws-conns WebSockets (ws) through each proxy, freshly started, and reads
// its RSS before and while they are open.
func (b *bench) suiteHold(ctx context.Context, suite string) (string, error) {
	o := b.o
	n := o.idleConns
	if suite == "ws" {
		n = o.wsConns
	}
	b.logf("suite %s: %d connections held on each proxy", suite, n)
	defer b.stopBackend()
	if err := b.startBackend(ctx); err != nil {
		return "", err
	}
	var t table[holdRow]
	err := b.eachProxy(ctx, suite, &t.failed, func(name string, p *proc) error {
		row, err := b.runHold(ctx, suite, name, n, p)
		return t.add(b, suite, name, row, err)
	})
	if err != nil {
		return "", err
	}
	return holdReport(t, suite, n), nil
}

// runHold is one connhold run against p: the RSS before, then with the
// connections open for holdSettle, then the re-check of every connection.
func (b *bench) runHold(ctx context.Context, suite, name string, n int, p *proc) (holdRow, error) {
	o := b.o
	mode := suite // connhold's -mode: idle or ws
	argv := []string{filepath.Join(o.bin, "connhold"), "-addr", "127.0.0.1:" + strconv.Itoa(o.proxyPort), "-host", hostHeader,
		"-path", o.bodyPath, "-mode", mode, "-conns", strconv.Itoa(n), "-hold", "2m"}
	if err := b.waitQuiet(ctx); err != nil {
		return holdRow{}, err
	}
	before, err := b.footprint(p)
	if err != nil {
		return holdRow{}, err
	}
	s0, err := b.snap(p)
	if err != nil {
		return holdRow{}, err
	}
	b.logf("%s: %d %s connections", name, n, mode)
	outFile := filepath.Join(b.work, "hold-"+name+"-"+suite+".out")
	out, err := os.Create(outFile)
	if err != nil {
		return holdRow{}, err
	}
	defer out.Close()
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := b.pinned(runCtx, o.loadCPU, argv...)
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return holdRow{}, err
	}
	if err := cmd.Start(); err != nil {
		return holdRow{}, fmt.Errorf("connhold: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Whatever happens below, connhold is told to finish and waited for.
	var runErr error
	waited := false
	finish := func() {
		stdin.Close()
		if !waited {
			runErr, waited = <-exited, true
		}
	}
	defer finish()
	// Wait for "ready", at most 2 minutes, or until connhold exits.
	ready := false
wait:
	for range 1200 {
		text, _ := os.ReadFile(outFile)
		if strings.Contains(string(text), "\nready\n") {
			ready = true
			break
		}
		select {
		case runErr = <-exited:
			waited = true
			break wait
		case <-ctx.Done():
			return holdRow{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !ready {
		finish()
		text, _ := os.ReadFile(outFile)
		reason := "connhold did not get its connections open: " + lastLine(string(text))
		if runErr != nil {
			reason += " (" + runErr.Error() + ")"
		}
		return holdRow{}, failedRun{reason}
	}
	if err := sleep(ctx, holdSettle); err != nil {
		return holdRow{}, err
	}
	during, err := b.footprint(p)
	if err != nil {
		return holdRow{}, err
	}
	s1, err := b.snap(p)
	if err != nil {
		return holdRow{}, err
	}
	finish()
	text, _ := os.ReadFile(outFile)
	u := measureUsage(s0, s1, 0, 1, true)
	b.raw.section(fmt.Sprintf("%s: %s", name, shellJoin(argv)), fmt.Sprintf("%s\nfootprint (upstream fds rss_kib): before %s, held %s\nusage: %s\n",
		withNewline(string(text)), before, during, u))
	var first, last keyValues
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		kv := parseKeyValues(sc.Text())
		if _, ok := kv["opened"]; ok {
			first = kv
		}
		if _, ok := kv["rechecked"]; ok {
			last = kv
		}
	}
	if first == nil || last == nil {
		reason := "connhold printed no result: " + lastLine(string(text))
		if runErr != nil {
			reason += " (" + runErr.Error() + ")"
		}
		return holdRow{}, failedRun{reason}
	}
	row := holdRow{
		name: name, opened: int(first.int("opened")), want: n, before: before.rssKiB, during: during.rssKiB,
		rechecked: int(last.int("rechecked")), openSeconds: first.float("open_s"), other: u.other,
		detail: fmt.Sprintf("open errors %d (first: %s); re-check first error: %s; fds %d -> %d; upstream %d -> %d",
			first.int("errors"), strings.ReplaceAll(first["first_error"], "_", " "), strings.ReplaceAll(last["first_error"], "_", " "),
			before.fds, during.fds, before.upstream, during.upstream),
	}
	return row, nil
}

func holdReport(t table[holdRow], suite string, n int) string {
	var ngPer value
	for _, r := range t.rows {
		if r.name == "nginx" {
			ngPer = r.perConn()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %6s %7s %7s %7s %8s %6s %6s %5s | %6s | %s\n",
		"target", "open", "rss0MiB", "rss1MiB", "+MiB", "KiB/conn", "check", "open-s", "oth%", "kb/ng", "details")
	for _, r := range t.rows {
		delta := known(float64(r.during-r.before)/1024, 1)
		fmt.Fprintf(&b, "%-10s %6d %7s %7s %7s %8s %6d %6.1f %5.0f | %6s | %s\n",
			r.name, r.opened, mib(r.before), mib(r.during), delta, r.perConn(), r.rechecked, r.openSeconds, r.other,
			ratio(r.perConn(), ngPer), r.detail)
	}
	writeFailed(&b, t.failed)
	what := fmt.Sprintf("%d idle keep-alive client connections (each did one GET, then idle)", n)
	if suite == "ws" {
		what = fmt.Sprintf("%d WebSockets (GET /ws upgraded, one echo each, then idle; the backend holds the other end)", n)
	}
	fmt.Fprintf(&b, `
Held open on each freshly started proxy by connhold (load core):
%s.
rss0MiB: the proxy tree's VmRSS before (NGINX: master + worker);
rss1MiB: %s after the last one opened; +MiB and KiB/conn: the difference, and per open
connection. check: connections that answered again (a second GET, or a second echo)
after the reading: every one should. open-s: seconds to open them all. kb/ng: KiB/conn
as a ratio to NGINX's.
`, what, holdSettle)
	return b.String()
}
