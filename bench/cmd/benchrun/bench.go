package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// bench is one run of the benchmark: its options, its work directory and
// the processes it started.
type bench struct {
	o      options
	stderr io.Writer // progress, "[bench] ..." lines
	work   string    // temporary directory: configurations, certificates, tool output
	certs  string    // the TLS suite's certificate directory, under work
	prio   []string  // nice -n -10 when running as root, else nothing
	env    []string  // the children's environment
	raw    *rawFile  // everything the run saw, for bench/results

	procs   []*proc // every long-running process started, stopped by close
	backend *proc   // the backend of the current suite (HTTP backend or L4 sink)
	failed  []string

	httpRows []httpRow // the HTTP suite's rows, which the bodies suite shows beside its own
}

func newBench(o options, stderr io.Writer) (*bench, error) {
	work, err := os.MkdirTemp("", "swarmgate-bench.")
	if err != nil {
		return nil, fmt.Errorf("benchrun: %w", err)
	}
	b := &bench{
		o: o, stderr: stderr, work: work, certs: filepath.Join(work, "certs"),
		env: withoutProxyEnv(os.Environ()),
	}
	// On a machine shared with other work, a higher priority makes the
	// scheduler give the benchmark most of its two cores, the same for every
	// target.
	if os.Geteuid() == 0 {
		b.prio = []string{"nice", "-n", "-10"}
	}
	return b, nil
}

// close stops every process still running and removes the work directory.
func (b *bench) close() {
	for _, p := range slices.Backward(b.procs) {
		p.stop()
	}
	os.RemoveAll(b.work)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "[bench] "+format+"\n", args...)
}

// run measures every suite, then prints their tables to stdout and to the
// raw file. It fails if any target failed, after the tables.
func (b *bench) run(ctx context.Context, stdout io.Writer) error {
	b.logf("suites %s: at most about %d s of measuring (more if noisy runs are repeated)",
		strings.Join(b.o.suites, " "), b.o.measuringSeconds())
	raw, err := createRaw(b.o.results, time.Now().UTC())
	if err != nil {
		return err
	}
	b.raw = raw
	defer raw.close()
	b.writeHeader(ctx)
	if slices.Contains(b.o.suites, "tls") || slices.Contains(b.o.suites, "https") {
		if err := b.makeCert(ctx); err != nil {
			return err
		}
	}

	var summary strings.Builder
	for _, s := range b.o.suites {
		var table string
		var err error
		switch s {
		case "http":
			table, err = b.suiteHTTP(ctx)
		case "tls":
			table, err = b.suiteTLS(ctx)
		case "https":
			table, err = b.suiteHTTPS(ctx)
		case "l4":
			table, err = b.suiteL4(ctx)
		case "slow":
			table, err = b.suiteSlow(ctx)
		case "bodies":
			table, err = b.suiteBodies(ctx)
		case "close":
			table, err = b.suiteClose(ctx)
		case "idle", "ws":
			table, err = b.suiteHold(ctx, s)
		}
		if err != nil {
			return fmt.Errorf("benchrun: suite %s: %w", s, err)
		}
		fmt.Fprintf(&summary, "== %s\n%s\n", s, table)
	}
	out := strings.TrimRight(summary.String(), "\n")
	b.raw.printf("### summary\nload average after: %s\n%s\n", loadAverage(), out)
	fmt.Fprintf(stdout, "\n%s\nraw results: %s\n", out, b.raw.path)
	if err := b.raw.close(); err != nil {
		return err
	}
	if len(b.failed) > 0 {
		return fmt.Errorf("benchrun: failed: %s", strings.Join(b.failed, " "))
	}
	return nil
}

// makeCert writes the TLS suite's certificate (ECDSA P-256 for bench.local,
// self-signed) and HAProxy's bench.pem (certificate then key).
func (b *bench) makeCert(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, filepath.Join(b.o.bin, "tlsload"), "-gencert", b.certs, "-sni", hostHeader).CombinedOutput()
	if err != nil {
		return fmt.Errorf("benchrun: tlsload -gencert: %w: %s", err, out)
	}
	var pem []byte
	for _, f := range []string{"bench.crt", "bench.key"} {
		part, err := os.ReadFile(filepath.Join(b.certs, f))
		if err != nil {
			return fmt.Errorf("benchrun: certificate: %w", err)
		}
		pem = append(pem, part...)
	}
	if err := os.WriteFile(filepath.Join(b.certs, "bench.pem"), pem, 0o600); err != nil {
		return fmt.Errorf("benchrun: certificate: %w", err)
	}
	return nil
}

// writeHeader starts the raw file with the machine, the tools and the knobs.
func (b *bench) writeHeader(ctx context.Context) {
	o := b.o
	first := func(argv ...string) string {
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if err != nil && line == "" {
			return argv[0] + " (not found)"
		}
		return line
	}
	commit := first("git", "rev-parse", "--short", "HEAD")
	if exec.CommandContext(ctx, "git", "diff", "--quiet").Run() != nil {
		commit += " (dirty tree)"
	}
	nginx := first("nginx", "-v")
	if _, v, ok := strings.Cut(nginx, "version: "); ok {
		nginx = v
	}
	fieldsOf := func(line string, idx ...int) string {
		f := strings.Fields(line)
		var out []string
		for _, i := range idx {
			if i < len(f) {
				out = append(out, f[i])
			}
		}
		return strings.Join(out, " ")
	}
	b.raw.printf("swarmgate side-by-side benchmark, %s\n", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"))
	b.raw.printf("commit: %s\n", commit)
	b.raw.printf("machine: %d cores, %s, kernel %s\n", runtime.NumCPU(), cpuModel(), kernel())
	b.raw.printf("load average before: %s\n", loadAverage())
	b.raw.printf("tools: %s, %s, %s, vegeta v12.13.0 (go install), %s\n", nginx,
		fieldsOf(first("haproxy", "-v"), 0, 2), fieldsOf(first("wrk", "-v"), 0, 1), runtime.Version())
	b.raw.printf("knobs: SUITES='%s' DURATION=%d WARMUP=%d RATE=%d CONNS=%d BODY=%s PROXY_CPU=%d LOAD_CPU=%d\n",
		strings.Join(o.suites, " "), int(o.duration.Seconds()), int(o.warmup.Seconds()), o.rate, o.conns, o.body, o.proxyCPU, o.loadCPU)
	b.raw.printf("       TLS_DURATION=%d TLS_CONNS=%d TLS_VERSIONS='%s' L4_BYTES=%s L4_DURATION=%d L4_CONNS=%d\n",
		int(o.tlsDuration.Seconds()), o.tlsConns, strings.Join(o.tlsVersions, " "), o.l4Bytes, int(o.l4Duration.Seconds()), o.l4Conns)
	slowhttptest := first("slowhttptest", "-h")
	if _, v, ok := strings.Cut(slowhttptest, "version "); ok {
		slowhttptest = "slowhttptest " + v
	}
	b.raw.printf("       SLOW_CONNS=%d SLOW_DURATION=%d (%s)\n\n", o.slowConns, int(o.slowDuration.Seconds()), slowhttptest)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// rawFile is bench/results/<UTC time>.txt. Its many writes are checked
// once: the first error is kept and returned by close.
type rawFile struct {
	path string
	f    *os.File
	err  error
}

func createRaw(dir string, now time.Time) (*rawFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("benchrun: results: %w", err)
	}
	path := filepath.Join(dir, now.Format("20060102T150405Z")+".txt")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("benchrun: results: %w", err)
	}
	return &rawFile{path: path, f: f}, nil
}

func (r *rawFile) printf(format string, args ...any) {
	if r.err == nil {
		_, r.err = fmt.Fprintf(r.f, format, args...)
	}
}

// section appends a "### title" section with body.
func (r *rawFile) section(title, body string) {
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	r.printf("### %s\n%s\n", title, body)
}

// sectionFile appends a section with the last n lines of file, if it has any.
func (r *rawFile) sectionFile(title, file string, n int) {
	b, err := os.ReadFile(file)
	if err != nil || len(b) == 0 {
		return
	}
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n")
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	r.section(title, strings.Join(lines, ""))
}

func (r *rawFile) close() error {
	if r.f == nil {
		return r.err
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = err
	}
	r.f = nil
	if r.err != nil {
		return fmt.Errorf("benchrun: results %s: %w", r.path, r.err)
	}
	return nil
}

// snap reads the CPU counters: the proxy tree (p, or nil for none), the
// current backend and both cores.
func (b *bench) snap(p *proc) (snapshot, error) {
	procs, err := readProcs("/proc")
	if err != nil {
		return snapshot{}, err
	}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return snapshot{}, fmt.Errorf("proc: %w", err)
	}
	s := snapshot{proxy: treeTicks(p.pid(), procs), backend: treeTicks(b.backend.pid(), procs)}
	if s.proxyCore, err = parseCoreTicks(string(stat), b.o.proxyCPU); err != nil {
		return snapshot{}, err
	}
	if s.loadCore, err = parseCoreTicks(string(stat), b.o.loadCPU); err != nil {
		return snapshot{}, err
	}
	return s, nil
}

// waitQuiet waits, at most 5 s, until both cores are under 15% busy over
// half a second, so that a measurement does not start on top of someone
// else's build. Only the benchmark's idle processes run at that point.
func (b *bench) waitQuiet(ctx context.Context) error {
	for range 10 {
		a, err := b.snap(nil)
		if err != nil {
			return err
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
		z, err := b.snap(nil)
		if err != nil {
			return err
		}
		if busy(a.proxyCore, z.proxyCore) < 0.15 && busy(a.loadCore, z.loadCore) < 0.15 {
			return nil
		}
	}
	b.logf("the machine stayed busy for 5 s; measuring anyway")
	return nil
}

// keepQuieter runs one measured attempt, and a second one (after a quiet
// wait) if more than noise percent of a core went to other processes during
// the first; it returns the attempt that left less to them. An error ends
// the attempts.
func keepQuieter[T any](ctx context.Context, b *bench, name string, try func(attempt int) (T, usage, error)) (T, usage, error) {
	var kept T
	var keptU usage
	for attempt := 1; attempt <= 2; attempt++ {
		if attempt == 2 {
			if err := b.waitQuiet(ctx); err != nil {
				return kept, keptU, err
			}
		}
		r, u, err := try(attempt)
		if err != nil {
			return r, u, err
		}
		if attempt == 1 || u.other < keptU.other {
			kept, keptU = r, u
		}
		if u.other <= noise {
			break
		}
		b.logf("%s: %.0f%% of a core went to other processes during the run", name, u.other)
	}
	return kept, keptU, nil
}
