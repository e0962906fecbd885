// Command benchrun runs the side-by-side benchmark: it starts each proxy
// under test pinned to one core, drives the load tools from the other core
// and prints one table per suite with the figures and their ratios to NGINX.
// bench/run.sh installs the tools and builds the binaries it runs;
// bench/README.md says what every figure means.
//
//	benchrun -bin DIR -swarmgate bin/swarmgate -conf bench/conf -results bench/results \
//	    -suites http,tls,l4 -proxies "swarmgate nginx haproxy stdproxy" -duration 10 ...
//
// Every flag but -bin, -swarmgate, -conf, -results and -nginx-stream-module
// is one of run.sh's environment knobs (DURATION is -duration, TLS_CONNS is
// -tls-conns). Configurations come from the templates in -conf; everything
// the run saw (tool output, configurations, CPU counters, proxy logs) goes to
// a file in -results. It sends traffic to 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/bench/internal/benchkit"
)

func main() { benchkit.Main(run) }

// run runs the suites the flags name and prints their tables to stdout;
// progress goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if err := o.check(runtime.NumCPU()); err != nil {
		return err
	}
	b, err := newBench(o, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	return b.run(ctx, stdout)
}

// The suites and the proxies, in the order the tables list them by default.
// The slow suite is not in the default run (defaultSuites): it holds
// thousands of connections for minutes.
var (
	allSuites     = []string{"http", "bodies", "close", "tls", "https", "l4", "idle", "ws", "slow"}
	defaultSuites = []string{"http", "bodies", "close", "tls", "https", "l4", "idle", "ws"}
	allProxies    = []string{"swarmgate", "nginx", "haproxy", "stdproxy"}
)

// options is one run's configuration: run.sh's knobs plus where things are.
type options struct {
	suites   []string // of allSuites, in the order given
	proxies  []string // of allProxies, in the order given
	duration time.Duration
	warmup   time.Duration
	rate     int
	conns    int
	body     string   // small, 1k or 64k
	bodyPath string   // the backend's path for body
	bodies   []string // the bodies suite's bodies, of small, 1k, 64k

	idleConns int // the idle suite's keep-alive connections
	wsConns   int // the ws suite's WebSockets

	tlsDuration time.Duration
	tlsConns    int
	tlsVersions []string // "1.3", "1.2"

	l4Bytes    string // l4load's -bytes: 2G, 512M, a byte count
	l4Duration time.Duration
	l4Conns    int

	slowConns    int
	slowDuration time.Duration

	proxyCPU, loadCPU      int
	backendPort, proxyPort int
	bin                    string // directory of backend, stdproxy, tlsload, l4load
	swarmgate              string // swarmgate's binary; empty if it could not be built
	swarmgateErr           string // why there is no swarmgate binary, for its FAILED rows
	conf                   string // directory of the configuration templates
	results                string // directory of the raw results files
	nginxStream            string // NGINX's stream module to load_module, if dynamic
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := benchkit.FlagSet("benchrun", stderr)
	suites := fs.String("suites", strings.Join(defaultSuites, ","), "suites to run, comma or space separated: "+strings.Join(allSuites, ", ")+" (SUITES)")
	proxies := fs.String("proxies", "swarmgate nginx haproxy stdproxy", "targets, in order (PROXIES)")
	duration := fs.String("duration", "10", "seconds of each measured HTTP run (DURATION)")
	warmup := fs.String("warmup", "2", "seconds of wrk before the measured runs of each target (WARMUP)")
	rate := fs.Int("rate", 2000, "requests/s of the fixed-rate latency run (RATE)")
	conns := fs.Int("conns", 64, "wrk connections (CONNS)")
	body := fs.String("body", "small", "response body: small (13 bytes), 1k, 64k (BODY)")
	bodies := fs.String("bodies", "small 1k 64k", "the bodies suite's response bodies (BODIES)")
	idleConns := fs.Int("idle-conns", 10000, "idle keep-alive connections held on each proxy in the idle suite (IDLE_CONNS)")
	wsConns := fs.Int("ws-conns", 1000, "WebSockets held open through each proxy in the ws suite (WS_CONNS)")
	tlsDuration := fs.String("tls-duration", "5", "seconds of each TLS run (TLS_DURATION)")
	tlsConns := fs.Int("tls-conns", 16, "concurrent handshake loops of tlsload (TLS_CONNS)")
	tlsVersions := fs.String("tls-versions", "1.3 1.2", "TLS versions measured, each full and resumed (TLS_VERSIONS)")
	l4Bytes := fs.String("l4-bytes", "2G", "bytes sent through each L4 target, K/M/G: powers of 1024 (L4_BYTES)")
	l4Duration := fs.String("l4-duration", "10", "seconds after which the L4 source starts no new segment (L4_DURATION)")
	l4Conns := fs.Int("l4-conns", 1, "parallel L4 connections (L4_CONNS)")
	slowConns := fs.Int("slow-conns", 1000, "connections of each slowhttptest attack (SLOW_CONNS)")
	slowDuration := fs.String("slow-duration", "60", "seconds of each slowhttptest attack (SLOW_DURATION)")
	proxyCPU := fs.Int("proxy-cpu", 0, "core of the proxies (PROXY_CPU)")
	loadCPU := fs.Int("load-cpu", 1, "core of the backend and the load generators (LOAD_CPU)")
	backendPort := fs.Int("backend-port", 19000, "loopback port of the backend (BACKEND_PORT)")
	proxyPort := fs.Int("proxy-port", 19001, "loopback port of the proxy (PROXY_PORT)")
	bin := fs.String("bin", "", "directory of the built backend, stdproxy, tlsload and l4load")
	swarmgate := fs.String("swarmgate", "", "swarmgate's binary (empty: its rows fail with -swarmgate-error)")
	swarmgateErr := fs.String("swarmgate-error", "no binary", "why there is no swarmgate binary")
	conf := fs.String("conf", "bench/conf", "directory of the configuration templates")
	results := fs.String("results", "bench/results", "directory of the raw results files")
	nginxStream := fs.String("nginx-stream-module", "", "NGINX's dynamic stream module, loaded in the L4 suite")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("benchrun: unexpected arguments %q", fs.Args())
	}
	o := options{
		suites: fields(*suites), proxies: fields(*proxies), rate: *rate, conns: *conns, body: *body,
		bodies: fields(*bodies), idleConns: *idleConns, wsConns: *wsConns,
		tlsConns: *tlsConns, tlsVersions: fields(*tlsVersions),
		l4Bytes: *l4Bytes, l4Conns: *l4Conns, slowConns: *slowConns,
		proxyCPU: *proxyCPU, loadCPU: *loadCPU, backendPort: *backendPort, proxyPort: *proxyPort,
		bin: *bin, swarmgate: *swarmgate, swarmgateErr: *swarmgateErr,
		conf: *conf, results: *results, nginxStream: *nginxStream,
	}
	var err error
	for _, d := range []struct {
		flag string
		in   string
		out  *time.Duration
	}{
		{"duration", *duration, &o.duration},
		{"warmup", *warmup, &o.warmup},
		{"tls-duration", *tlsDuration, &o.tlsDuration},
		{"l4-duration", *l4Duration, &o.l4Duration},
		{"slow-duration", *slowDuration, &o.slowDuration},
	} {
		if *d.out, err = parseSeconds(d.in); err != nil {
			return options{}, fmt.Errorf("benchrun: -%s: %w", d.flag, err)
		}
	}
	return o, nil
}

// fields splits a list given with commas or spaces.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// parseSeconds reads a whole number of seconds, with or without a trailing s.
func parseSeconds(s string) (time.Duration, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "s"))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("must be a whole number of seconds, got %q", s)
	}
	return time.Duration(n) * time.Second, nil
}

// bodyPaths are the backend's paths of each response body.
var bodyPaths = map[string]string{"small": "/", "1k": "/1k", "64k": "/64k"}

var l4BytesSyntax = regexp.MustCompile(`^[1-9][0-9]*[KMG]?$`)

// check validates o against the ranges run.sh has always enforced, and fills
// o.bodyPath. ncpu is the number of cores the benchmark may use.
func (o *options) check(ncpu int) error {
	path, ok := bodyPaths[o.body]
	if !ok {
		return fmt.Errorf("benchrun: -body must be small, 1k or 64k, got %q", o.body)
	}
	o.bodyPath = path
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("benchrun: "+format, args...)) }
	for _, body := range o.bodies {
		if _, ok := bodyPaths[body]; !ok {
			bad("-bodies: small, 1k or 64k, got %q", body)
		}
	}
	if len(o.bodies) == 0 {
		bad("-bodies: none given")
	}
	if len(o.suites) == 0 {
		bad("-suites: none given")
	}
	for _, s := range o.suites {
		if !slices.Contains(allSuites, s) {
			bad("unknown suite %q (%s)", s, strings.Join(allSuites, ", "))
		}
	}
	if len(o.proxies) == 0 {
		bad("-proxies: none given")
	}
	for _, p := range o.proxies {
		if !slices.Contains(allProxies, p) {
			bad("unknown proxy %q (%s)", p, strings.Join(allProxies, ", "))
		}
	}
	inRange := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("%s must be %d..%d, got %d", name, lo, hi, v)
		}
	}
	inRange("-duration (seconds)", int(o.duration/time.Second), 1, 120)
	inRange("-warmup (seconds)", int(o.warmup/time.Second), 0, 30)
	inRange("-rate", o.rate, 1, 100000)
	inRange("-conns", o.conns, 1, 4096)
	inRange("-tls-duration (seconds)", int(o.tlsDuration/time.Second), 1, 60)
	inRange("-tls-conns", o.tlsConns, 1, 1024)
	inRange("-l4-duration (seconds)", int(o.l4Duration/time.Second), 1, 120)
	inRange("-l4-conns", o.l4Conns, 1, 64)
	// One loopback port per connection, well within the ephemeral range.
	inRange("-idle-conns", o.idleConns, 1, 20000)
	inRange("-ws-conns", o.wsConns, 1, 20000)
	// NGINX's worker takes 4096 connections (nginx.common), and a held
	// upstream connection is one more.
	inRange("-slow-conns", o.slowConns, 1, 2000)
	inRange("-slow-duration (seconds)", int(o.slowDuration/time.Second), 10, 600)
	inRange("-backend-port", o.backendPort, 1, 65535)
	inRange("-proxy-port", o.proxyPort, 1, 65534) // the TLS and L4 suites use proxy-port+1 too
	for _, v := range o.tlsVersions {
		if v != "1.3" && v != "1.2" {
			bad("-tls-versions: 1.3 and/or 1.2, got %q", v)
		}
	}
	if len(o.tlsVersions) == 0 {
		bad("-tls-versions: none given")
	}
	if !l4BytesSyntax.MatchString(o.l4Bytes) {
		bad("-l4-bytes must look like 2G, 512M or a byte count, got %q", o.l4Bytes)
	}
	if o.proxyCPU == o.loadCPU {
		bad("-proxy-cpu and -load-cpu must differ")
	}
	if o.proxyCPU < 0 || o.loadCPU < 0 || o.proxyCPU >= ncpu || o.loadCPU >= ncpu {
		bad("this machine has %d cores; set -proxy-cpu/-load-cpu", ncpu)
	}
	if o.bin == "" {
		bad("-bin is required")
	}
	return errors.Join(errs...)
}

// measuringSeconds is about how long the suites measure, without repeats.
func (o options) measuringSeconds() int {
	sec := func(d time.Duration) int { return int(d / time.Second) }
	n := len(o.proxies)
	total := 0
	for _, s := range o.suites {
		switch s {
		case "http":
			total += (sec(o.warmup) + 2*sec(o.duration) + 5) * (n + 1)
		case "tls":
			total += (sec(o.tlsDuration) + 1) * 2 * len(o.tlsVersions) * n
		case "https":
			total += (sec(o.tlsDuration) + 1) * (len(httpsProtos) + 1) * n // + the h2load row
		case "l4":
			total += (sec(o.l4Duration) + 2) * (n + 1)
		case "slow":
			total += (sec(o.slowDuration) + 4) * len(slowAttacks) * len(slices.DeleteFunc(slices.Clone(o.proxies), func(p string) bool { return p == "stdproxy" }))
		case "bodies":
			nb := len(o.bodies)
			if slices.Contains(o.suites, "http") && slices.Contains(o.bodies, o.body) {
				nb-- // the HTTP suite's rows
			}
			total += (sec(o.warmup) + 2*sec(o.duration) + 5) * (n + 1) * nb
		case "close":
			total += (sec(o.warmup) + sec(o.duration) + 5) * (n + 1)
		case "idle", "ws":
			total += holdSeconds * n
		}
	}
	return total
}
