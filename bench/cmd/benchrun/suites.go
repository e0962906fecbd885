package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// shellJoin is argv as a shell would read it back (for the raw file).
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " '\"$") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// secs is d as run.sh's knobs and the tools' flags write it: "10s".
func secs(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

// failure is a FAILED row: a target that did not start, carried no traffic
// or whose load tool failed.
type failure struct{ name, reason string }

// fail records a FAILED row of suite in failed and in the run's list.
func (b *bench) fail(suite, name, reason string, failed *[]failure) {
	*failed = append(*failed, failure{name, reason})
	b.failed = append(b.failed, suite+"/"+name)
}

// failedRun is the error of a measured attempt whose tool failed in a way
// that fails the target's row instead of the run.
type failedRun struct{ reason string }

func (f failedRun) Error() string { return f.reason }

// loadRun is one measured run of a load tool: the counters around it, the
// generator's CPU and the tool's output.
type loadRun struct {
	s0, s1 snapshot
	gen    float64 // the load generator's CPU, ticks
	out    string
	err    error // the tool's own failure (an exit status), if any
}

// measured runs argv as the load of a measured run against p (nil: no
// proxy), with its output in outFile, between two snapshots. Only
// cancellation and unreadable counters are errors; the tool's own failure is
// logged and kept in the result.
func (b *bench) measured(ctx context.Context, name string, p *proc, limit time.Duration, outFile string, argv ...string) (loadRun, error) {
	var r loadRun
	var err error
	if r.s0, err = b.snap(p); err != nil {
		return r, err
	}
	r.gen, r.err = b.load(ctx, limit, outFile, argv...)
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	if r.err != nil {
		b.logf("%s: %v", name, r.err)
	}
	if r.s1, err = b.snap(p); err != nil {
		return r, err
	}
	out, err := os.ReadFile(outFile)
	if err != nil {
		return r, fmt.Errorf("%s: %w", argv[0], err)
	}
	r.out = string(out)
	return r, nil
}

// rawRun appends one attempt's tool output, counters and usage to the raw
// file; unit is what the usage's CPU figure is per.
func (b *bench) rawRun(title string, r loadRun, u usage, unit string, extra string) {
	b.raw.section(title, fmt.Sprintf("%s%s"+
		"counters (proxy backend ticks, core %d and core %d: process irq steal total): %s -> %s\n"+
		"generator: %.0f ticks\n"+
		"usage (proxy_ticks cpu_us/%s proxy_core%% load_core%% other%%): %s\n",
		withNewline(r.out), withNewline(extra), b.o.proxyCPU, b.o.loadCPU, r.s0, r.s1, r.gen, unit, u))
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// startBackend starts the HTTP backend on the load core and waits for it.
func (b *bench) startBackend(ctx context.Context) error {
	if !portFree(b.o.backendPort) {
		return fmt.Errorf("port %d is in use (set BACKEND_PORT)", b.o.backendPort)
	}
	p, err := b.start("backend", b.o.loadCPU, filepath.Join(b.work, "backend.log"),
		filepath.Join(b.o.bin, "backend"), "-listen", "127.0.0.1:"+strconv.Itoa(b.o.backendPort))
	if err != nil {
		return err
	}
	b.backend = p
	if err := b.waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", b.o.backendPort), p); err != nil {
		return fmt.Errorf("the backend did not start: %w", err)
	}
	return nil
}

func (b *bench) stopBackend() {
	if b.backend != nil {
		b.backend.stop()
		b.backend = nil
	}
}

// eachProxy starts, in turn, every proxy of the run that serves suite,
// calls measure while it runs, and stops it. A proxy that does not come up
// gets a FAILED row in failed; an error of measure ends the suite.
func (b *bench) eachProxy(ctx context.Context, suite string, failed *[]failure, measure func(name string, p *proc) error) error {
	for _, name := range b.o.proxies {
		if name == "stdproxy" && !plainHTTP(suite) {
			b.logf("stdproxy: HTTP only, not in the %s suite", strings.ToUpper(suite))
			continue
		}
		if err := b.runProxy(ctx, suite, name, failed, func(p *proc) error { return measure(name, p) }); err != nil {
			return err
		}
	}
	return nil
}

// runProxy starts name for suite, calls measure while it runs, and stops
// it. If it does not come up, it gets a FAILED row in failed; an error of
// measure is returned.
func (b *bench) runProxy(ctx context.Context, suite, name string, failed *[]failure, measure func(p *proc) error) error {
	if !portFree(b.o.proxyPort) {
		return fmt.Errorf("port %d is in use (set PROXY_PORT)", b.o.proxyPort)
	}
	s, err := b.proxyUp(ctx, suite, name)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		b.fail(suite, name, err.Error(), failed)
		return nil
	}
	err = measure(s.p)
	b.raw.sectionFile(name+" log (last 50 lines)", s.log, 50)
	s.p.stop()
	return err
}

// proxyUp starts name for suite and waits until it carries the suite's
// traffic. Its error is the reason for the target's FAILED row.
func (b *bench) proxyUp(ctx context.Context, suite, name string) (started, error) {
	s, err := b.startProxy(name, suite)
	if err != nil {
		b.logf("%v", err)
		return started{}, errors.New("could not start (see log above)")
	}
	switch suite {
	case "http", "slow", "bodies", "close", "idle", "ws":
		err = b.waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", b.o.proxyPort, b.o.bodyPath), s.p)
	case "tls", "https":
		err = b.waitHTTP(ctx, fmt.Sprintf("https://127.0.0.1:%d%s", b.o.proxyPort, b.o.bodyPath), s.p)
	case "l4":
		err = b.waitL4(ctx, b.o.proxyPort, s.p)
	}
	if err != nil {
		b.logf("%s: %v", name, err)
		s.p.stop()
		return started{}, errors.New("carried no traffic (see log above)")
	}
	if s.config != "" {
		text, _ := os.ReadFile(s.config)
		b.raw.section(fmt.Sprintf("%s configuration for the %s suite (%s)", name, suite, s.config), string(text))
	}
	return s, nil
}

// ---------------------------------------------------------------- HTTP suite

func (b *bench) suiteHTTP(ctx context.Context) (string, error) {
	o := b.o
	b.logf("suite http: body %s (%s), %d connections, %s runs, vegeta at %d/s", o.body, o.bodyPath, o.conns, secs(o.duration), o.rate)
	defer b.stopBackend()
	if err := b.startBackend(ctx); err != nil {
		return "", err
	}
	var t table[httpRow]
	row, err := b.measureHTTP(ctx, "direct", o.backendPort, nil)
	if err != nil {
		return "", err
	}
	t.rows = append(t.rows, row)
	err = b.eachProxy(ctx, "http", &t.failed, func(name string, p *proc) error {
		row, err := b.measureHTTP(ctx, name, o.proxyPort, p)
		return t.add(b, "http", name, row, err)
	})
	if err != nil {
		return "", err
	}
	for _, r := range t.rows {
		r.body = o.body
		b.httpRows = append(b.httpRows, r)
	}
	return httpReport(t, o), nil
}

// measureHTTP warms up, then measures throughput (wrk) and latency (vegeta)
// at port; p is the proxy, nil for the backend alone.
func (b *bench) measureHTTP(ctx context.Context, name string, port int, p *proc) (httpRow, error) {
	return b.measureHTTPOf(ctx, name, port, p, b.o.bodyPath, false)
}

// measureHTTPOf is measureHTTP for the backend's path; with closeEach,
// every request asks for Connection: close (a new connection per request)
// and only the throughput run is made.
func (b *bench) measureHTTPOf(ctx context.Context, name string, port int, p *proc, path string, closeEach bool) (httpRow, error) {
	o := b.o
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	var extra []string
	if closeEach {
		extra = []string{"-H", "Connection: close"}
	}
	if err := b.waitQuiet(ctx); err != nil {
		return httpRow{}, err
	}
	if o.warmup > 0 {
		b.logf("%s: warm-up %s", name, secs(o.warmup))
		_, err := b.load(ctx, o.warmup+15*time.Second, filepath.Join(b.work, "warmup.out"),
			append(append([]string{"wrk", "-t1", "-c" + strconv.Itoa(o.conns), "-d" + secs(o.warmup), "-H", "Host: " + hostHeader}, extra...), url)...)
		if ctx.Err() != nil {
			return httpRow{}, ctx.Err()
		}
		if err != nil {
			b.logf("%s: warm-up: %v", name, err)
		}
	}
	w, wu, err := b.runWrk(ctx, name, url, p, extra...)
	if err != nil {
		return httpRow{}, err
	}
	if closeEach {
		return httpRow{
			name: name, rps: known(w.rps, 0).v, cpu: wu.perWork, share: wu.share, load: wu.loadBusy, other: wu.other,
			errors: w.non2xx + w.sockErrs, detail: fmt.Sprintf("wrk: non-2xx=%d socket-errors=[%s]", w.non2xx, w.sockets),
		}, nil
	}
	v, vu, err := b.runVegeta(ctx, name, url, p)
	if err != nil {
		return httpRow{}, err
	}
	verr := v.requests - v.ok
	detail := fmt.Sprintf("wrk: non-2xx=%d socket-errors=[%s]; vegeta: non-200=%d/%d", w.non2xx, w.sockets, verr, v.requests)
	if v.errors != "" {
		detail += " [" + v.errors + "]"
	}
	return httpRow{
		name: name, rps: known(w.rps, 0).v, p50: known(v.p50us, 0).v, p99: known(v.p99us, 0).v,
		cpu: wu.perWork, cpuRate: vu.perWork, share: wu.share, load: wu.loadBusy,
		other: max(wu.other, vu.other), errors: w.non2xx + w.sockErrs + verr, detail: detail,
	}, nil
}

// runWrk is the closed-loop throughput run.
// extra are more wrk flags (a header).
func (b *bench) runWrk(ctx context.Context, name, url string, p *proc, extra ...string) (wrkResult, usage, error) {
	o := b.o
	argv := append(append([]string{"wrk", "-t1", "-c" + strconv.Itoa(o.conns), "-d" + secs(o.duration), "--latency", "-H", "Host: " + hostHeader}, extra...), url)
	return keepQuieter(ctx, b, name, func(attempt int) (wrkResult, usage, error) {
		b.logf("%s: wrk -t1 -c%d -d%s (attempt %d)", name, o.conns, secs(o.duration), attempt)
		r, err := b.measured(ctx, name, p, o.duration+30*time.Second, filepath.Join(b.work, "wrk.out"), argv...)
		if err != nil {
			return wrkResult{}, usage{}, err
		}
		w := parseWrk(r.out)
		u := measureUsage(r.s0, r.s1, r.gen, float64(w.requests), p != nil)
		b.rawRun(fmt.Sprintf("%s: %s (attempt %d)", name, shellJoin(argv), attempt), r, u, "req", "")
		return w, u, nil
	})
}

// runVegeta is the fixed-rate (open-loop) latency run.
func (b *bench) runVegeta(ctx context.Context, name, url string, p *proc) (vegetaResult, usage, error) {
	o := b.o
	targets := filepath.Join(b.work, "targets")
	results := filepath.Join(b.work, "vegeta.bin")
	if err := os.WriteFile(targets, []byte("GET "+url+"\n"), 0o644); err != nil {
		return vegetaResult{}, usage{}, fmt.Errorf("vegeta: %w", err)
	}
	argv := []string{"vegeta", "attack", "-targets=" + targets, "-rate=" + strconv.Itoa(o.rate), "-duration=" + secs(o.duration),
		"-keepalive=true", "-timeout=5s", "-header", "Host: " + hostHeader, "-output=" + results}
	return keepQuieter(ctx, b, name, func(attempt int) (vegetaResult, usage, error) {
		b.logf("%s: vegeta %d/s for %s (attempt %d)", name, o.rate, secs(o.duration), attempt)
		r, err := b.measured(ctx, name, p, o.duration+30*time.Second, filepath.Join(b.work, "vegeta.log"), argv...)
		if err != nil {
			return vegetaResult{}, usage{}, err
		}
		report := func(kind string) ([]byte, error) {
			out, err := exec.CommandContext(ctx, "vegeta", "report", "-type="+kind, results).Output()
			if err != nil {
				return nil, fmt.Errorf("vegeta report -type=%s: %w", kind, err)
			}
			return out, nil
		}
		js, err := report("json")
		if err != nil {
			return vegetaResult{}, usage{}, err
		}
		v, err := parseVegeta(js)
		if err != nil {
			return vegetaResult{}, usage{}, err
		}
		text, err := report("text")
		if err != nil {
			return vegetaResult{}, usage{}, err
		}
		u := measureUsage(r.s0, r.s1, r.gen, float64(v.requests), p != nil)
		b.rawRun(fmt.Sprintf("%s: %s (%s) (attempt %d)", name, shellJoin(argv[:len(argv)-1]), url, attempt), r, u, "req", string(text))
		return v, u, nil
	})
}

// ---------------------------------------------------------------- TLS suite

func (b *bench) suiteTLS(ctx context.Context) (string, error) {
	o := b.o
	b.logf("suite tls: ECDSA P-256, TLS %s, full and resumed, %d loops, %s runs", strings.Join(o.tlsVersions, " "), o.tlsConns, secs(o.tlsDuration))
	defer b.stopBackend()
	if err := b.startBackend(ctx); err != nil {
		return "", err
	}
	var t table[tlsRow]
	err := b.eachProxy(ctx, "tls", &t.failed, func(name string, p *proc) error {
		for _, ver := range o.tlsVersions {
			for _, mode := range []string{"full", "resumed"} {
				row, err := b.runTLS(ctx, name, ver, mode, p)
				if err := t.add(b, "tls", name, row, err); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return tlsReport(t, o), nil
}

// runTLS is one tlsload run of ver ("1.3", "1.2") and mode ("full",
// "resumed") against p.
func (b *bench) runTLS(ctx context.Context, name, ver, mode string, p *proc) (tlsRow, error) {
	o := b.o
	argv := []string{filepath.Join(o.bin, "tlsload"), "-addr", "127.0.0.1:" + strconv.Itoa(o.proxyPort), "-sni", hostHeader,
		"-cert", filepath.Join(b.certs, "bench.crt"), "-conns", strconv.Itoa(o.tlsConns), "-duration", secs(o.tlsDuration), "-tls", ver}
	if mode == "resumed" {
		argv = append(argv, "-resume")
	}
	if err := b.waitQuiet(ctx); err != nil {
		return tlsRow{}, err
	}
	r, u, err := keepQuieter(ctx, b, name, func(attempt int) (loadRun, usage, error) {
		b.logf("%s: TLS %s %s handshakes, %d loops for %s (attempt %d)", name, ver, mode, o.tlsConns, secs(o.tlsDuration), attempt)
		r, err := b.measured(ctx, name, p, o.tlsDuration+30*time.Second, filepath.Join(b.work, "tls.out"), argv...)
		if err != nil {
			return r, usage{}, err
		}
		u := measureUsage(r.s0, r.s1, r.gen, float64(parseKeyValues(r.out).int("handshakes")), p != nil)
		b.rawRun(fmt.Sprintf("%s: tlsload TLS %s %s -conns %d -duration %s (attempt %d)", name, ver, mode, o.tlsConns, secs(o.tlsDuration), attempt), r, u, "handshake", "")
		return r, u, nil
	})
	if err != nil {
		return tlsRow{}, err
	}
	kv := parseKeyValues(r.out)
	if _, ok := kv["handshakes"]; !ok {
		return tlsRow{}, failedRun{fmt.Sprintf("TLS %s %s: %s", ver, mode, lastLine(r.out))}
	}
	hs, resumed, errs := kv.int("handshakes"), kv.int("resumed"), kv.int("errors")
	detail := fmt.Sprintf("resumed %d/%d", resumed, hs)
	if e := kv["first_error"]; e != "" {
		detail += "; first error: " + strings.ReplaceAll(e, "_", " ")
	}
	// A resumed run in which the server refused tickets measured full
	// handshakes: those count as errors.
	if mode == "resumed" {
		errs += hs - resumed
	}
	return tlsRow{
		name: name, kind: ver + " " + mode, rate: known(kv.float("rate"), 0).v, p50: kv.int("p50us"), p99: kv.int("p99us"),
		cpu: u.perWork, share: u.share, load: u.loadBusy, other: u.other, errors: errs, detail: detail,
	}, nil
}

// ---------------------------------------------------------------- L4 suite

func (b *bench) suiteL4(ctx context.Context) (string, error) {
	o := b.o
	b.logf("suite l4: %s per target (at most %s), %d connection(s)", o.l4Bytes, secs(o.l4Duration), o.l4Conns)
	if !portFree(o.backendPort) {
		return "", fmt.Errorf("port %d is in use (set BACKEND_PORT)", o.backendPort)
	}
	sinkLog := filepath.Join(b.work, "sink.log")
	sink, err := b.start("l4 sink", o.loadCPU, sinkLog, filepath.Join(o.bin, "l4load"), "sink", "-listen", "127.0.0.1:"+strconv.Itoa(o.backendPort))
	if err != nil {
		return "", err
	}
	b.backend = sink
	defer b.stopBackend()
	if err := b.waitL4(ctx, o.backendPort, sink); err != nil {
		return "", fmt.Errorf("the L4 sink did not start: %w", err)
	}
	var t table[l4Row]
	add := func(name string, port int, p *proc) error {
		row, err := b.runL4(ctx, name, port, p)
		return t.add(b, "l4", name, row, err)
	}
	if err := add("direct", o.backendPort, nil); err != nil {
		return "", err
	}
	if err := b.eachProxy(ctx, "l4", &t.failed, func(name string, p *proc) error { return add(name, o.proxyPort, p) }); err != nil {
		return "", err
	}
	b.raw.sectionFile("l4 sink log (last 20 lines)", sinkLog, 20)
	return l4Report(t, o), nil
}

// runL4 is one bulk transfer to port; p is the proxy, nil for the sink
// alone. A failed transfer fails the row at once, without a repeat.
func (b *bench) runL4(ctx context.Context, name string, port int, p *proc) (l4Row, error) {
	o := b.o
	argv := []string{filepath.Join(o.bin, "l4load"), "source", "-addr", "127.0.0.1:" + strconv.Itoa(port),
		"-bytes", o.l4Bytes, "-duration", secs(o.l4Duration), "-conns", strconv.Itoa(o.l4Conns)}
	if err := b.waitQuiet(ctx); err != nil {
		return l4Row{}, err
	}
	r, u, err := keepQuieter(ctx, b, name, func(attempt int) (loadRun, usage, error) {
		b.logf("%s: %s over %d connection(s), at most %s (attempt %d)", name, o.l4Bytes, o.l4Conns, secs(o.l4Duration), attempt)
		r, err := b.measured(ctx, name, p, o.l4Duration+60*time.Second, filepath.Join(b.work, "l4.out"), argv...)
		if err != nil {
			return r, usage{}, err
		}
		kv := parseKeyValues(r.out)
		// The work is counted in GB (10^9 bytes): the usage's CPU figure is
		// µs per GB.
		u := measureUsage(r.s0, r.s1, r.gen, float64(kv.int("bytes"))/1e9, p != nil)
		b.rawRun(fmt.Sprintf("%s: l4load source -bytes %s -duration %s -conns %d to 127.0.0.1:%d (attempt %d)",
			name, o.l4Bytes, secs(o.l4Duration), o.l4Conns, port, attempt), r, u, "GB", "")
		if _, ok := kv["bytes"]; r.err != nil || !ok {
			b.logf("%s: l4load failed: %s", name, lastLine(r.out))
			return r, u, failedRun{"transfer failed: " + lastLine(r.out)}
		}
		return r, u, nil
	})
	if err != nil {
		return l4Row{}, err
	}
	kv := parseKeyValues(r.out)
	row := l4Row{name: name, gbps: kv.float("gbps"), share: u.share, load: u.loadBusy, other: u.other, bytes: kv["bytes"], elapsed: kv["elapsed"]}
	if u.perWork.ok {
		row.cpu = known(u.perWork.v/1e6, 3)
	}
	return row, nil
}
