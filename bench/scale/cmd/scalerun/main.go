// Command scalerun is the control plane's scale benchmark. It serves a fake
// Docker Engine API of N services and N×M tasks (bench/scale/fakedocker) on
// loopback, starts `swarmgate control` against it, then one edge and then E
// in all, and measures: the control plane's time to its first configuration,
// memory and idle CPU; each edge's time to its first table, memory and idle
// CPU; and, for each kind of change (a service added, a task started by a
// scale-up, a task leaving by a scale-down), the time from Swarm's event to
// every edge's table, the bytes and the edge CPU it costs, and the Docker API
// requests it causes with one edge and with E. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/swarmgate/swarmgate/bench/scale/fakedocker"
)

// options are the flags.
type options struct {
	services, tasks, edges, reps int
	idle                         time.Duration
	idleWindows                  int
	gap                          time.Duration
	changeTimeout                time.Duration
	dockerQuiet                  time.Duration
	network                      string
	edgeKind                     string // "edge" (swarmgate edge --control) or "client" (scaleedge)
	edgeFlags                    string // extra flags of every real edge, space-separated
	swarmgate, scaleedge         string // prebuilt binaries; empty: built
	out                          string
	deadline                     time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.services, "services", 10000, "services in the fake Swarm")
	flag.IntVar(&o.tasks, "tasks", 5, "running tasks per service")
	flag.IntVar(&o.edges, "edges", 50, "edge processes")
	flag.IntVar(&o.reps, "reps", 5, "repetitions of each change, with one edge and with all")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "length of one idle CPU window")
	flag.IntVar(&o.idleWindows, "idle-windows", 3, "idle windows with all edges (3 × 10 s covers one 30 s resync)")
	flag.DurationVar(&o.gap, "gap", time.Second, "quiet time between two changes")
	flag.DurationVar(&o.changeTimeout, "change-timeout", 30*time.Second, "longest wait for a change to reach every edge")
	flag.DurationVar(&o.dockerQuiet, "docker-quiet", 600*time.Millisecond,
		"a change's Docker API requests are counted until the fake has had none for this long (the control plane polls a service an event named for a while after it)")
	flag.StringVar(&o.network, "network", "bench-net", "overlay network of the services (control --network)")
	flag.StringVar(&o.edgeKind, "edge-kind", "edge", "edge processes: edge (swarmgate edge --control) or client (bench/scale/cmd/scaleedge, a control.Client alone)")
	flag.StringVar(&o.edgeFlags, "edge-flags", "", "extra flags of every swarmgate edge, space-separated (e.g. --admin-pprof)")
	flag.StringVar(&o.swarmgate, "swarmgate", "", "swarmgate binary (default: go build ./cmd/swarmgate into a temporary directory)")
	flag.StringVar(&o.scaleedge, "scaleedge", "", "scaleedge binary for -edge-kind client (default: built)")
	flag.StringVar(&o.out, "out", "", "results directory (default bench/results/scale-<UTC time>)")
	flag.DurationVar(&o.deadline, "deadline", 20*time.Minute, "the whole run is stopped after this long")
	flag.Parse()
	if o.edgeKind != "edge" && o.edgeKind != "client" {
		fmt.Fprintln(os.Stderr, "scalerun: -edge-kind is edge or client")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// bench is one run: its options, its processes and what it measured.
type bench struct {
	o     options
	ctx   context.Context
	dir   string // results
	bin   string // temporary binaries
	fake  *fakedocker.Swarm
	ctl   *proc
	admin string // control plane admin address
	addr  string // control plane stream address

	mu    sync.Mutex // guards edges
	edges []*edge

	r results
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[scale] "+format+"\n", args...)
}

func run(ctx context.Context, o options) (err error) {
	b := &bench{o: o, ctx: ctx}
	b.r.Options = map[string]any{"services": o.services, "tasks": o.tasks, "edges": o.edges, "reps": o.reps,
		"idle": o.idle.String(), "idle_windows": o.idleWindows, "edge_kind": o.edgeKind}
	b.r.Started = time.Now().UTC()
	b.r.LoadBefore = loadavg()
	b.r.Command = strings.Join(os.Args, " ")
	if b.dir = o.out; b.dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		b.dir = filepath.Join(root, "bench", "results", "scale-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return fmt.Errorf("scalerun: %w", err)
	}
	if b.bin, err = os.MkdirTemp("", "swarmgate-scale-"); err != nil {
		return fmt.Errorf("scalerun: %w", err)
	}
	defer os.RemoveAll(b.bin)
	defer b.stopAll()
	if err := b.build(); err != nil {
		return err
	}
	if err := b.measure(); err != nil {
		b.r.Error = err.Error()
		b.write()
		return err
	}
	b.r.LoadAfter = loadavg()
	return b.write()
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("scalerun: run inside the swarmgate module: go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// build compiles the binaries that were not given.
func (b *bench) build() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, t := range []struct {
		path *string
		pkg  string
		need bool
	}{
		{&b.o.swarmgate, "./cmd/swarmgate", true},
		{&b.o.scaleedge, "./bench/scale/cmd/scaleedge", b.o.edgeKind == "client"},
	} {
		if *t.path != "" || !t.need {
			continue
		}
		out := filepath.Join(b.bin, filepath.Base(t.pkg))
		logf("go build -o %s %s", out, t.pkg)
		cmd := exec.CommandContext(b.ctx, "go", "build", "-o", out, t.pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("scalerun: go build %s: %w", t.pkg, err)
		}
		*t.path = out
	}
	return nil
}

// stopAll stops every process the run started: edges first, at once, then
// the control plane.
func (b *bench) stopAll() {
	b.mu.Lock()
	edges := b.edges
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range edges {
		wg.Go(func() { e.p.stop(3 * time.Second) })
	}
	wg.Wait()
	if b.ctl != nil {
		b.ctl.stop(5 * time.Second)
	}
}

// measure runs the phases in order.
func (b *bench) measure() error {
	o := b.o
	logf("building a Swarm of %d services × %d tasks", o.services, o.tasks)
	b.fake = fakedocker.New(fakedocker.Options{Services: o.services, Tasks: o.tasks, Network: o.network})
	b.fake.Warm()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("scalerun: fake API: %w", err)
	}
	api := &http.Server{Handler: b.fake, ReadHeaderTimeout: 5 * time.Second}
	go api.Serve(ln)
	defer api.Close()
	b.r.Docker = dockerSizes(ln.Addr().String())

	if err := b.startControl(ln.Addr().String()); err != nil {
		return err
	}
	if err := b.phase(1); err != nil {
		b.final()
		return err
	}
	defer b.final()
	if o.edges > 1 {
		if err := b.phase(o.edges); err != nil {
			return err
		}
	}
	return nil
}

// final reads the processes' memory and the control plane's metrics at the
// end of the run, failed or not.
func (b *bench) final() {
	b.r.ControlEnd, _ = readMemory(b.ctl.pid())
	b.r.ControlMetrics, _ = scrape("http://"+b.admin+"/metrics", "swarmgate_swarm_syncs_total", "swarmgate_swarm_api_requests_total",
		"swarmgate_control_sent_bytes_total", "swarmgate_control_frames_sent_total", "swarmgate_control_snapshots_total", "swarmgate_control_versions_total")
	for _, e := range b.allEdges() {
		m, _ := readMemory(e.p.pid())
		b.r.EdgeEnd = append(b.r.EdgeEnd, m)
	}
}

// dockerSizes measures the fake API's two big listings.
func dockerSizes(addr string) map[string]int64 {
	out := map[string]int64{}
	for name, path := range map[string]string{
		"services_bytes": "/v1.47/services?status=true",
		"tasks_bytes":    `/v1.47/tasks?filters={"desired-state":{"running":true}}`,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			continue
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out[name] = n
	}
	return out
}

// startControl starts `swarmgate control` against the fake API at addr and
// waits for its /readyz.
func (b *bench) startControl(dockerAddr string) error {
	lp, err := freePort()
	if err != nil {
		return err
	}
	ap, err := freePort()
	if err != nil {
		return err
	}
	b.addr, b.admin = "127.0.0.1:"+strconv.Itoa(lp), "127.0.0.1:"+strconv.Itoa(ap)
	args := []string{"control", "--docker", "tcp://" + dockerAddr, "--listen", b.addr, "--admin", b.admin,
		"--network", b.o.network, "--log-level", "warn"}
	b.r.ControlCommand = "swarmgate " + strings.Join(args, " ")
	logf("starting %s", b.r.ControlCommand)
	if b.ctl, err = startProc("control", filepath.Join(b.dir, "control.log"), nil, nil, b.o.swarmgate, args...); err != nil {
		return err
	}
	ready, err := waitReady(b.ctx, b.ctl, "http://"+b.admin+"/readyz", 2*time.Minute)
	if err != nil {
		return err
	}
	b.r.ControlFirstConfig = ready.Sub(b.ctl.started)
	b.r.ControlReady, _ = readMemory(b.ctl.pid())
	logf("control plane ready in %v, RSS %s", b.r.ControlFirstConfig.Round(time.Millisecond), mb(b.r.ControlReady.RSS))
	return nil
}

func (b *bench) allEdges() []*edge {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*edge(nil), b.edges...)
}

// phase brings the edges up to n, measures idle CPU, then the changes.
func (b *bench) phase(n int) error {
	// The phase is recorded at once, so that a failed run reports what it measured.
	b.r.Phases = append(b.r.Phases, phaseResult{Edges: n})
	ph := &b.r.Phases[len(b.r.Phases)-1]
	from := len(b.allEdges())
	logf("phase %d edges: starting %d", n, n-from)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := from; i < n; i++ {
		wg.Go(func() { errs[i] = b.startEdge(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	edges := b.allEdges()
	for _, e := range edges[from:] {
		s, err := e.waitSwap(0, time.Now().Add(2*time.Minute))
		if err != nil {
			return err
		}
		ph.FirstTable = append(ph.FirstTable, s.At.Sub(e.p.started))
		if !e.connectAt.IsZero() {
			ph.ConnectToTable = append(ph.ConnectToTable, s.At.Sub(e.connectAt))
		}
	}
	ph.ControlMem, _ = readMemory(b.ctl.pid())
	for _, e := range edges {
		m, _ := readMemory(e.p.pid())
		ph.EdgeMem = append(ph.EdgeMem, m)
	}
	logf("phase %d edges: all have their first table (slowest %v)", n, maxDur(ph.FirstTable).Round(time.Millisecond))

	if err := b.sleep(2 * time.Second); err != nil { // let the connection storm settle
		return err
	}
	windows := 1
	if n == b.o.edges {
		windows = b.o.idleWindows
	}
	if err := b.idle(ph, windows); err != nil {
		return err
	}
	for rep := range b.o.reps {
		for _, kind := range []string{"add", "scale-up", "scale-down"} {
			c, err := b.change(kind, rep)
			if err != nil {
				return err
			}
			ph.Changes = append(ph.Changes, c)
			if err := b.sleep(b.o.gap); err != nil {
				return err
			}
		}
	}
	return nil
}

// startEdge starts edge i and its log reader.
func (b *bench) startEdge(i int) error {
	e := newEdge()
	name := fmt.Sprintf("edge-%02d", i)
	var err error
	if b.o.edgeKind == "client" {
		pr, pw := io.Pipe()
		go e.readClient(pr)
		e.p, err = startProc(name, filepath.Join(b.dir, name+".log"), pw, nil, b.o.scaleedge, "-control", "tcp://"+b.addr)
	} else {
		hp, err1 := freePort()
		ap, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		e.admin = "127.0.0.1:" + strconv.Itoa(ap)
		logFile, ferr := os.Create(filepath.Join(b.dir, name+".stderr.log"))
		if ferr != nil {
			return fmt.Errorf("scalerun: %w", ferr)
		}
		pr, pw := io.Pipe()
		go func() { e.readEdgeLog(pr, logFile); logFile.Close() }()
		args := []string{"edge", "--control", "tcp://" + b.addr, "--http", "127.0.0.1:" + strconv.Itoa(hp), "--https", "",
			"--admin", e.admin, "--network", b.o.network, "--access-log=false", "--log-level", "info"}
		args = append(args, strings.Fields(b.o.edgeFlags)...)
		if i == 0 {
			logf("edge: swarmgate %s", strings.Join(args, " "))
		}
		e.p, err = startProc(name, filepath.Join(b.dir, name+".log"), nil, pw, b.o.swarmgate, args...)
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.edges = append(b.edges, e)
	b.mu.Unlock()
	return nil
}

// idle measures the CPU of the control plane and of every edge over
// windows windows of o.idle, and the Docker API requests meanwhile.
func (b *bench) idle(ph *phaseResult, windows int) error {
	edges := b.allEdges()
	logf("phase %d edges: idle, %d × %v", len(edges), windows, b.o.idle)
	req0 := b.fake.Requests()
	for range windows {
		c0, _ := cpuTicks(b.ctl.pid())
		cn0, _ := cpuNanos(b.ctl.pid())
		e0 := make([]int64, len(edges))
		for i, e := range edges {
			e0[i], _ = cpuNanos(e.p.pid())
		}
		t0 := time.Now()
		if err := b.sleep(b.o.idle); err != nil {
			return err
		}
		el := time.Since(t0).Seconds()
		c1, _ := cpuTicks(b.ctl.pid())
		cn1, _ := cpuNanos(b.ctl.pid())
		w := idleWindow{Seconds: el, ControlTicks: (c1 - c0) / el, ControlSched: float64(cn1-cn0) / 1e9 / el}
		for i, e := range edges {
			n, _ := cpuNanos(e.p.pid())
			w.Edges = append(w.Edges, float64(n-e0[i])/1e9/el)
		}
		ph.Idle = append(ph.Idle, w)
	}
	ph.IdleRequests = diff(b.fake.Requests(), req0)
	return nil
}

// change makes one change and measures it on every edge.
func (b *bench) change(kind string, rep int) (changeResult, error) {
	edges := b.allEdges()
	c := changeResult{Kind: kind}
	before := make([]int, len(edges))
	cpu0 := make([]int64, len(edges))
	bytes0 := b.receivedBytes(edges[0])
	for i, e := range edges {
		before[i] = e.count()
		cpu0[i], _ = cpuNanos(e.p.pid())
	}
	ctl0, _ := cpuNanos(b.ctl.pid())
	req0 := b.fake.Requests()
	t0 := time.Now()

	var at time.Time
	var err error
	target := fakedocker.ID("service", (rep*997+13)%b.o.services)
	switch kind {
	case "add":
		_, at = b.fake.AddService()
	case "scale-up":
		at, err = b.fake.ScaleUp(target)
	case "scale-down":
		at, err = b.fake.ScaleDown(target)
	}
	if err != nil {
		return c, err
	}
	svcs, tasks := b.fake.Counts()
	deadline := time.Now().Add(b.o.changeTimeout)
	for i, e := range edges {
		s, err := e.waitSwap(before[i], deadline)
		if err != nil {
			return c, fmt.Errorf("scalerun: %s #%d: %w", kind, rep, err)
		}
		c.Latency = append(c.Latency, s.At.Sub(at))
		if s.Routes != svcs || (s.Endpoints >= 0 && s.Endpoints != int64(tasks)) {
			c.Mismatch++
		}
		if i == 0 && s.Bytes >= 0 && before[0] > 0 {
			e.mu.Lock()
			c.Bytes = s.Bytes - e.swaps[before[0]-1].Bytes
			e.mu.Unlock()
		}
	}
	if err := b.sleep(200 * time.Millisecond); err != nil { // the work after the swap (GC, pool pruning)
		return c, err
	}
	c.Window = time.Since(t0)
	for i, e := range edges {
		n, _ := cpuNanos(e.p.pid())
		c.EdgeCPU = append(c.EdgeCPU, time.Duration(n-cpu0[i]))
	}
	ctl1, _ := cpuNanos(b.ctl.pid())
	c.ControlCPU = time.Duration(ctl1 - ctl0)
	// The control plane goes on polling the service after the edges have
	// the change: its requests are counted once it is done, not when the
	// last edge swapped (which made the count follow the edges' latency).
	if err := b.dockerQuiet(deadline); err != nil {
		return c, fmt.Errorf("scalerun: %s #%d: %w", kind, rep, err)
	}
	c.Settled = time.Since(t0)
	c.Requests = diff(b.fake.Requests(), req0)
	if bytes0 >= 0 {
		c.Bytes = b.receivedBytes(edges[0]) - bytes0
	}
	logf("  %-10s #%d: slowest edge %v, edge CPU %v (median), %d B",
		kind, rep, maxDur(c.Latency).Round(time.Millisecond), median(c.EdgeCPU).Round(10*time.Microsecond), c.Bytes)
	return c, nil
}

// dockerQuiet waits until the fake has had no API request for -docker-quiet,
// or deadline.
func (b *bench) dockerQuiet(deadline time.Time) error {
	for {
		quiet := time.Since(b.fake.LastRequest())
		if quiet >= b.o.dockerQuiet {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Docker API had a request %v ago at the deadline, want none for %v", quiet, b.o.dockerQuiet)
		}
		if err := b.sleep(min(b.o.dockerQuiet-quiet, 100*time.Millisecond)); err != nil {
			return err
		}
	}
}

// receivedBytes reads a real edge's swarmgate_control_client_received_bytes_total
// from its /metrics, or returns -1 for a client edge (its swaps carry it).
func (b *bench) receivedBytes(e *edge) int64 {
	if e.admin == "" {
		return -1
	}
	m, err := scrape("http://"+e.admin+"/metrics", "swarmgate_control_client_received_bytes_total")
	if err != nil || len(m) == 0 {
		return -1
	}
	for _, v := range m {
		return int64(v)
	}
	return -1
}

// sleep waits d or until the run is stopped.
func (b *bench) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return fmt.Errorf("scalerun: stopped: %w", b.ctx.Err())
	case <-t.C:
	}
	if err := b.ctl.alive(); err != nil {
		return err
	}
	return nil
}

func diff(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// write saves the raw results (JSON) and the report (text) and prints the report.
func (b *bench) write() error {
	raw, err := json.MarshalIndent(&b.r, "", "  ")
	if err != nil {
		return fmt.Errorf("scalerun: results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "results.json"), raw, 0o644); err != nil {
		return fmt.Errorf("scalerun: %w", err)
	}
	var sb strings.Builder
	report(&sb, &b.r, b.o)
	fmt.Print(sb.String())
	if err := os.WriteFile(filepath.Join(b.dir, "report.txt"), []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("scalerun: %w", err)
	}
	logf("results in %s", b.dir)
	return nil
}
