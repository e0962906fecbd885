package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc/PID/stat and
// /proc/stat (what `getconf CLK_TCK` prints): 100 in the user-space ABI of
// every Linux architecture.
const clockTick = 100

// noise is the share of a core, in percent, that other processes may take
// during a run before the run is repeated and its row says "noisy".
const noise = 10

// procStat is what the benchmark reads of /proc/PID/stat.
type procStat struct {
	ppid  int
	ticks uint64 // utime + stime, of all the process's threads
}

// parseProcStat reads one /proc/PID/stat line. The command name (field 2)
// is in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("proc stat: no command name in %q", line)
	}
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	f := strings.Fields(line[i+1:])
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: ppid: %w", err)
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: stime: %w", err)
	}
	return procStat{ppid: ppid, ticks: utime + stime}, nil
}

// readProcs reads /proc/PID/stat of every process under procDir. A process
// that exits while it is read is left out.
func readProcs(procDir string) (map[int]procStat, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	procs := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		st, err := parseProcStat(string(b))
		if err != nil {
			return nil, fmt.Errorf("proc %d: %w", pid, err)
		}
		procs[pid] = st
	}
	return procs, nil
}

// treeTicks is the CPU of root and all its descendants in procs (NGINX's
// worker is a child of its master), in ticks; 0 if root is 0.
func treeTicks(root int, procs map[int]procStat) uint64 {
	var total uint64
	for _, pid := range treePIDs(root, procs) {
		total += procs[pid].ticks
	}
	return total
}

// treePIDs is root and all its descendants in procs, root first; none if
// root is 0 or not in procs.
func treePIDs(root int, procs map[int]procStat) []int {
	if _, ok := procs[root]; root == 0 || !ok {
		return nil
	}
	kids := make(map[int][]int)
	for pid, p := range procs {
		kids[p.ppid] = append(kids[p.ppid], pid)
	}
	var tree []int
	for queue := []int{root}; len(queue) > 0; queue = queue[1:] {
		tree = append(tree, queue[0])
		queue = append(queue, kids[queue[0]]...)
	}
	return tree
}

// coreTicks is one core's line of /proc/stat, in ticks.
type coreTicks struct {
	process uint64 // user + nice + system: what processes are charged
	irq     uint64 // hard and soft interrupts: charged to no process
	steal   uint64
	total   uint64 // everything up to steal, idle and iowait included
}

// parseCoreTicks finds core cpu's line in the text of /proc/stat.
func parseCoreTicks(stat string, cpu int) (coreTicks, error) {
	name := "cpu" + strconv.Itoa(cpu)
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != name {
			continue
		}
		if len(f) < 9 {
			return coreTicks{}, fmt.Errorf("/proc/stat: %s: %d fields, want at least 9", name, len(f))
		}
		var v [8]uint64 // user nice system idle iowait irq softirq steal
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return coreTicks{}, fmt.Errorf("/proc/stat: %s: %w", name, err)
			}
			v[i] = n
		}
		t := coreTicks{process: v[0] + v[1] + v[2], irq: v[5] + v[6], steal: v[7]}
		for _, n := range v {
			t.total += n
		}
		return t, nil
	}
	return coreTicks{}, fmt.Errorf("/proc/stat: no line for %s", name)
}

// busy is the share of the core that was not idle between a and b, in [0, 1].
func busy(a, b coreTicks) float64 {
	if b.total <= a.total {
		return 0
	}
	return float64(b.process+b.irq-a.process-a.irq) / float64(b.total-a.total)
}

// snapshot is the CPU counters at one moment, in ticks.
type snapshot struct {
	proxy, backend      uint64 // process trees; 0 if there is none
	proxyCore, loadCore coreTicks
}

func (s snapshot) String() string {
	return fmt.Sprintf("%d %d %d %d %d %d %d %d %d %d", s.proxy, s.backend,
		s.proxyCore.process, s.proxyCore.irq, s.proxyCore.steal, s.proxyCore.total,
		s.loadCore.process, s.loadCore.irq, s.loadCore.steal, s.loadCore.total)
}

// value is a figure that may be missing ("-" in the tables), rounded to
// the decimals it is printed with, so that ratios are those of the figures
// as printed.
type value struct {
	v    float64
	prec int
	ok   bool
}

// known is v printed with prec decimals.
func known(v float64, prec int) value {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return value{}
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', prec, 64), 64)
	return value{v: r, prec: prec, ok: true}
}

func (x value) String() string {
	if !x.ok {
		return "-"
	}
	return strconv.FormatFloat(x.v, 'f', x.prec, 64)
}

// ratio is x/y with two decimals, or missing if either is or y is not
// positive.
func ratio(x, y value) value {
	if !x.ok || !y.ok || y.v <= 0 {
		return value{}
	}
	return known(x.v/y.v, 2)
}

// usage is what the counters say of one measured run.
type usage struct {
	proxyTicks uint64
	perWork    value   // the proxy tree's CPU µs per unit of work (request, handshake, GB)
	share      value   // the proxy's share of its core, %
	loadBusy   value   // the load core busy, %
	other      float64 // the largest share of either core that went to other processes, whole %
}

func (u usage) String() string {
	return fmt.Sprintf("%d %s %s %s %.0f", u.proxyTicks, u.perWork, u.share, u.loadBusy, u.other)
}

// measureUsage compares two snapshots around a run that did work units of
// work. gen is the load generator's CPU during the run, in ticks; hasProxy
// is false for the runs without a proxy ("direct"). Other processes' share
// of the proxy core is what it ran beyond the proxy; of the load core, what
// it ran beyond the backend and the generator.
func measureUsage(s0, s1 snapshot, gen, work float64, hasProxy bool) usage {
	d := func(a, b uint64) float64 { return float64(b) - float64(a) }
	proxy := d(s0.proxy, s1.proxy)
	backend := d(s0.backend, s1.backend)
	pTotal := d(s0.proxyCore.total, s1.proxyCore.total)
	lProc := d(s0.loadCore.process, s1.loadCore.process)
	lTotal := d(s0.loadCore.total, s1.loadCore.total)
	u := usage{proxyTicks: uint64(max(proxy, 0))}
	if hasProxy && work > 0 {
		u.perWork = known(proxy*1e6/clockTick/work, 1)
	}
	if hasProxy && pTotal > 0 {
		u.share = known(100*proxy/pTotal, 0)
	}
	if lTotal > 0 {
		u.loadBusy = known(100*(lProc+d(s0.loadCore.irq, s1.loadCore.irq))/lTotal, 0)
	}
	var o0, o1 float64
	if pTotal > 0 {
		o0 = 100 * (d(s0.proxyCore.process, s1.proxyCore.process) - proxy) / pTotal
	}
	if lTotal > 0 {
		o1 = 100 * (lProc - backend - gen) / lTotal
	}
	u.other = max(known(max(o0, o1), 0).v, 0)
	return u
}

// bound says what limited a run: "noisy" if other processes took more
// than noise percent of a core, else "proxy" if the proxy had 90% or more
// of its core, "load" if it had less (the load core saturated first), "-"
// without a proxy.
func bound(other float64, share value) string {
	switch {
	case other > noise:
		return "noisy"
	case !share.ok:
		return "-"
	case share.v >= 90:
		return "proxy"
	default:
		return "load"
	}
}
