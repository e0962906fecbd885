package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ---------------------------------------------------------------- slow suite

// slowAttack is one slowhttptest mode.
type slowAttack struct {
	name string   // the table's attack column
	path string   // the backend's path the attack requests
	args []string // slowhttptest's flags for the mode
}

// slowAttacks are the slow suite's attacks, in the order they run.
//
//   - headers (slowloris): a request's headers never end; one more header
//     line every 10 s.
//   - body (R-U-Dead-Yet): a POST announcing an 8 KiB body (less than
//     swarmgate's --request-buffer) whose bytes come 10 s apart.
//   - read: a GET of the 64 KiB body, read 32 bytes a second through a
//     receive window of at most 512 bytes. On loopback the kernel's send
//     buffer takes the whole answer (it grows to 4 MiB, tcp_wmem), so no
//     proxy has to hold it; slowhttptest pipelines at most 10 requests, and
//     1,000 connections of 640 KiB in flight would take about 1.6 GB of
//     kernel memory (more than tcp_mem's pressure threshold here), so one.
var slowAttacks = []slowAttack{
	{"headers", "/", []string{"-H", "-i", "10"}},
	{"body", "/", []string{"-B", "-i", "10", "-s", "8192"}},
	{"read", "/64k", []string{"-X", "-k", "1", "-n", "1", "-z", "32", "-w", "1", "-y", "512"}},
}

// slowRate is how many connections per second slowhttptest opens (its -r):
// 1,000 connections are all open after 5 s.
const slowRate = 200

// slowProbe is slowhttptest's -p: it probes the target every slowProbe
// seconds, and counts it unavailable until a probe gets an answer within
// slowProbe seconds.
const slowProbe = 2

func (b *bench) suiteSlow(ctx context.Context) (string, error) {
	o := b.o
	b.logf("suite slow: %d connections per attack (%d/s), %s per attack, attacks headers, body, read", o.slowConns, slowRate, secs(o.slowDuration))
	defer b.stopBackend()
	if err := b.startBackend(ctx); err != nil {
		return "", err
	}
	var t table[slowRow]
	for _, name := range o.proxies {
		if name == "stdproxy" {
			b.logf("stdproxy: not in the SLOW suite")
			continue
		}
		// A fresh proxy per attack: each starts with the same idle
		// connections, file descriptors and memory.
		for _, a := range slowAttacks {
			failed := len(t.failed)
			err := b.runProxy(ctx, "slow", name, &t.failed, func(p *proc) error {
				row, err := b.runSlow(ctx, name, a, p)
				return t.add(b, "slow", name, row, err)
			})
			if err != nil {
				return "", err
			}
			if len(t.failed) > failed {
				break // it will not do better at the next attack
			}
		}
	}
	return slowReport(t, o), nil
}

// slowRow is one target and attack of the slow suite.
type slowRow struct {
	name, attack   string
	slow           slowResult // slowhttptest's samples
	idle, peak     footprint  // before the attack, and the peak of each figure during it
	cpu            float64    // the proxy tree's CPU seconds during the attack
	other          float64    // oth%, as in the other suites
	samples        int        // footprint samples taken
	slowErr, extra string     // slowhttptest's failure, if any; details
}

// runSlow is one slowhttptest attack on p, with the proxy's footprint
// sampled every second while it lasts.
func (b *bench) runSlow(ctx context.Context, name string, a slowAttack, p *proc) (slowRow, error) {
	o := b.o
	prefix := filepath.Join(b.work, "slow-"+name+"-"+a.name)
	proxyAddr := "127.0.0.1:" + strconv.Itoa(o.proxyPort)
	// slowhttptest sends the URL's host as the Host header (with the port),
	// and only connects where the URL's host resolves: bench.local does not,
	// so it goes through -d, which sends every connection to the proxy's
	// address with the request in absolute form.
	argv := append([]string{"slowhttptest"}, a.args...)
	argv = append(argv, "-c", strconv.Itoa(o.slowConns), "-r", strconv.Itoa(slowRate), "-l", strconv.Itoa(int(o.slowDuration/time.Second)),
		"-p", strconv.Itoa(slowProbe), "-u", fmt.Sprintf("http://%s:%d%s", hostHeader, o.proxyPort, a.path), "-d", proxyAddr, "-g", "-o", prefix)
	// slowhttptest's probe counts any answer as "available", a 400 too:
	// check first that the target answers its form of request with a 200.
	if err := b.checkAbsoluteForm(ctx, a.path); err != nil {
		return slowRow{}, failedRun{a.name + ": " + err.Error()}
	}
	if err := b.waitQuiet(ctx); err != nil {
		return slowRow{}, err
	}
	idle, err := b.footprint(p)
	if err != nil {
		return slowRow{}, err
	}
	b.logf("%s: slowhttptest %s, %d connections for %s", name, a.name, o.slowConns, secs(o.slowDuration))
	s0, err := b.snap(p)
	if err != nil {
		return slowRow{}, err
	}
	done := make(chan struct{})
	peaks := make(chan sampled, 1)
	// At most one sample a second, for no longer than the run's limit.
	limit := o.slowDuration + 60*time.Second
	go func() { peaks <- b.sampleFootprint(done, p, int(limit/time.Second)) }()
	gen, runErr := b.load(ctx, limit, prefix+".out", argv...)
	close(done)
	peak := <-peaks
	if ctx.Err() != nil {
		return slowRow{}, ctx.Err()
	}
	s1, err := b.snap(p)
	if err != nil {
		return slowRow{}, err
	}
	out, _ := os.ReadFile(prefix + ".out")
	csv, _ := os.ReadFile(prefix + ".csv")
	stdout := stripANSI(string(out))
	u := measureUsage(s0, s1, gen, 1, true)
	row := slowRow{
		name: name, attack: a.name, slow: parseSlowCSV(string(csv)), idle: idle, peak: peak.peak,
		cpu: float64(u.proxyTicks) / clockTick, other: u.other, samples: peak.samples,
	}
	row.slow.exit = slowExitStatus(stdout)
	if peak.err != nil {
		row.extra = "footprint: " + peak.err.Error()
	}
	b.raw.section(fmt.Sprintf("%s: %s", name, shellJoin(argv)), fmt.Sprintf(
		"%s\n--- %s.csv\n%s"+
			"counters (proxy backend ticks, core %d and core %d: process irq steal total): %s -> %s\n"+
			"generator: %.0f ticks\nusage (proxy_ticks cpu_us/run proxy_core%% load_core%% other%%): %s\n"+
			"footprint (upstream fds rss_kib): idle %s, peak %s over %d samples\n",
		lastLines(stdout, 40), prefix, withNewline(string(csv)), o.proxyCPU, o.loadCPU, s0, s1, gen, u, idle, peak.peak, peak.samples))
	if runErr != nil {
		b.logf("%s: %v", name, runErr)
	}
	if row.slow.samples == 0 {
		reason := "slowhttptest wrote no samples"
		if runErr != nil {
			reason += " (" + runErr.Error() + ")"
		}
		return slowRow{}, failedRun{a.name + ": " + reason + ": " + lastLine(stdout)}
	}
	return row, nil
}

// checkAbsoluteForm sends the proxy one GET of path in absolute form with
// the Host slowhttptest sends ("GET http://bench.local:PORT/path", Host
// bench.local:PORT), as an HTTP client sends it to a forward proxy, and
// fails unless the answer is a 200.
func (b *bench) checkAbsoluteForm(ctx context.Context, path string) error {
	proxyURL := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(b.o.proxyPort)}
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	target := fmt.Sprintf("http://%s:%d%s", hostHeader, b.o.proxyPort, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s through the proxy: %w", target, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("GET %s through the proxy: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s through the proxy: %s, want 200", target, resp.Status)
	}
	return nil
}

// footprint is what a proxy holds at one moment.
type footprint struct {
	upstream int   // ESTABLISHED TCP connections to the backend's port
	fds      int   // open file descriptors of the proxy's process tree
	rssKiB   int64 // VmRSS of the proxy's process tree (NGINX: master + worker)
}

func (f footprint) String() string { return fmt.Sprintf("%d %d %d", f.upstream, f.fds, f.rssKiB) }

// max is the larger of f and g, figure by figure.
func (f footprint) max(g footprint) footprint {
	return footprint{upstream: max(f.upstream, g.upstream), fds: max(f.fds, g.fds), rssKiB: max(f.rssKiB, g.rssKiB)}
}

// footprint reads p's footprint from /proc.
func (b *bench) footprint(p *proc) (footprint, error) {
	var f footprint
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		text, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			continue // no IPv6
		}
		if err != nil {
			return f, fmt.Errorf("proc: %w", err)
		}
		n, err := countEstablished(string(text), b.o.backendPort)
		if err != nil {
			return f, fmt.Errorf("%s: %w", file, err)
		}
		f.upstream += n
	}
	procs, err := readProcs("/proc")
	if err != nil {
		return f, err
	}
	for _, pid := range treePIDs(p.pid(), procs) {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue // gone
		}
		f.fds += len(fds)
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue
		}
		rss, err := parseVmRSS(string(status))
		if err != nil {
			return f, fmt.Errorf("proc %d: %w", pid, err)
		}
		f.rssKiB += rss
	}
	return f, nil
}

// sampled is the peak of the footprint samples of one run.
type sampled struct {
	peak    footprint
	samples int
	err     error // the first failed sample's error
}

// sampleFootprint samples p's footprint every second until done is closed,
// at most max times (failed samples included), and returns the peak of each
// figure.
func (b *bench) sampleFootprint(done <-chan struct{}, p *proc, max int) sampled {
	var s sampled
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range max {
		select {
		case <-done:
			return s
		case <-tick.C:
		}
		f, err := b.footprint(p)
		if err != nil {
			if s.err == nil {
				s.err = err
			}
			continue
		}
		s.peak = s.peak.max(f)
		s.samples++
	}
	return s
}

// countEstablished counts the connections in the text of /proc/net/tcp or
// /proc/net/tcp6 that are ESTABLISHED (state 01) to remote port port: the
// proxy's connections to the backend. The backend's own ends of them have
// the port as their local port, and are not counted.
func countEstablished(text string, port int) (int, error) {
	n := 0
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue // the header: sl local_address rem_address st ...
		}
		if len(f) < 4 {
			return 0, fmt.Errorf("line %d: %d fields, want at least 4", i+1, len(f))
		}
		_, hexPort, ok := strings.Cut(f[2], ":")
		if !ok {
			return 0, fmt.Errorf("line %d: remote address %q", i+1, f[2])
		}
		rp, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return 0, fmt.Errorf("line %d: remote port: %w", i+1, err)
		}
		if int(rp) == port && f[3] == "01" {
			n++
		}
	}
	return n, nil
}

// parseVmRSS reads the resident set size, in KiB, from the text of
// /proc/PID/status. A process without one (a zombie, a kernel thread) has 0.
func parseVmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS: %q", strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return n, nil
	}
	return 0, nil
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// stripANSI removes the colors and screen clears of slowhttptest's output.
func stripANSI(s string) string { return ansiEscape.ReplaceAllString(s, "") }

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return withNewline(strings.Join(lines, ""))
}
