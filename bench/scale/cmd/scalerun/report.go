package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// results are the raw numbers of a run (results.json).
type results struct {
	Command        string           `json:"command"`
	Options        map[string]any   `json:"options"`
	Started        time.Time        `json:"started"`
	LoadBefore     string           `json:"load_before"`
	LoadAfter      string           `json:"load_after"`
	Error          string           `json:"error,omitempty"`
	Docker         map[string]int64 `json:"docker_listing_sizes"`
	ControlCommand string           `json:"control_command"`

	ControlFirstConfig time.Duration      `json:"control_first_config_ns"`
	ControlReady       memory             `json:"control_mem_ready"`
	ControlEnd         memory             `json:"control_mem_end"`
	ControlMetrics     map[string]float64 `json:"control_metrics_end"`
	EdgeEnd            []memory           `json:"edge_mem_end"`
	Phases             []phaseResult      `json:"phases"`
}

// phaseResult is what was measured with a number of edges connected.
type phaseResult struct {
	Edges          int              `json:"edges"`
	FirstTable     []time.Duration  `json:"first_table_ns"`      // edge process started → first table, for the edges started in this phase
	ConnectToTable []time.Duration  `json:"connect_to_table_ns"` // client edges: Run called → first table
	ControlMem     memory           `json:"control_mem"`
	EdgeMem        []memory         `json:"edge_mem"` // every edge, once all had their first table
	Idle           []idleWindow     `json:"idle"`
	IdleRequests   map[string]int64 `json:"idle_docker_requests"`
	Changes        []changeResult   `json:"changes"`
}

// idleWindow is the CPU used, in cores, over one quiet window.
type idleWindow struct {
	Seconds      float64   `json:"seconds"`
	ControlTicks float64   `json:"control_cores_stat"`      // utime+stime of /proc/PID/stat
	ControlSched float64   `json:"control_cores_schedstat"` // the same from schedstat, in ns
	Edges        []float64 `json:"edge_cores"`
}

// changeResult is one change as seen by every edge.
type changeResult struct {
	Kind       string           `json:"kind"`
	Latency    []time.Duration  `json:"latency_ns"` // Swarm's event → the edge's table, per edge
	Mismatch   int              `json:"mismatch"`   // edges whose table did not hold the expected counts
	Bytes      int64            `json:"bytes_edge0"`
	EdgeCPU    []time.Duration  `json:"edge_cpu_ns"` // per edge, over Window
	ControlCPU time.Duration    `json:"control_cpu_ns"`
	Window     time.Duration    `json:"window_ns"`
	Requests   map[string]int64 `json:"docker_requests"`   // from the change until the Docker API was quiet (-docker-quiet)
	Settled    time.Duration    `json:"docker_settled_ns"` // from the change until then
}

// Goals of the issue.
const (
	goalControlFirst = 3 * time.Second
	goalControlRSS   = 300 << 20
	goalControlIdle  = 0.02
	goalEdgeFirst    = time.Second
	goalEdgeRSS      = 150 << 20
	goalEdgeCPU      = 10 * time.Millisecond
	goalEdgeBytes    = 50 << 10
	goalEdgeIdle     = 0.005
	goalPropagation  = 500 * time.Millisecond
)

var kinds = []struct{ key, name string }{
	{"add", "service added"},
	{"scale-up", "task started (scale-up)"},
	{"scale-down", "task leaving (scale-down)"},
}

// report writes the table of a run.
func report(w io.Writer, r *results, o options) {
	fmt.Fprintf(w, "\nControl plane at %d services / %d tasks, %d edges (%s); load average before %s, after %s\n",
		o.services, o.services*o.tasks, o.edges, o.edgeKind, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "Docker listings: services %s, tasks %s\n\n", mb(r.Docker["services_bytes"]), mb(r.Docker["tasks_bytes"]))
	if r.Error != "" {
		fmt.Fprintf(w, "RUN FAILED: %s\n\n", r.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tgoal\tmeasured\tresult")
	row := func(what, goal, measured string, pass bool) {
		res := "FAIL"
		if pass {
			res = "pass"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", what, goal, measured, res)
	}
	info := func(what, measured string) { fmt.Fprintf(tw, "%s\t\t%s\t\n", what, measured) }

	row("control: start → first config (/readyz 200)", "≤ 3 s", dur(r.ControlFirstConfig), r.ControlFirstConfig > 0 && r.ControlFirstConfig <= goalControlFirst)
	peak := r.ControlEnd.HWM
	row("control: RSS (ready / end; peak VmHWM)", "≤ 300 MB",
		fmt.Sprintf("%s / %s; peak %s", mb(r.ControlReady.RSS), mb(r.ControlEnd.RSS), mb(peak)), peak > 0 && peak <= goalControlRSS)

	one, all := phaseOf(r, 1), phaseOf(r, o.edges)
	if all != nil && len(all.Idle) > 0 {
		var ws []string
		var sum, secs float64
		for _, w := range all.Idle {
			ws = append(ws, pct(w.ControlSched))
			sum += w.ControlSched * w.Seconds
			secs += w.Seconds
		}
		mean := sum / secs
		row(fmt.Sprintf("control: idle CPU (%d edges; %v windows; mean)", all.Edges, o.idle), "< 2% of a core",
			fmt.Sprintf("%s; mean %s", strings.Join(ws, ", "), pct(mean)), mean < goalControlIdle)
	}
	if one != nil && len(one.FirstTable) > 0 {
		row("edge: start → first table, 1 edge alone", "≤ 1 s", dur(one.FirstTable[0]), one.FirstTable[0] <= goalEdgeFirst)
		if len(one.ConnectToTable) > 0 {
			info("  of which connecting → first table", dur(one.ConnectToTable[0]))
		}
	}
	if all != nil && all != one && len(all.FirstTable) > 0 {
		row(fmt.Sprintf("edge: start → first table, %d more started at once", len(all.FirstTable)), "≤ 1 s (p95)", spread(all.FirstTable), percentile(all.FirstTable, 95) <= goalEdgeFirst)
		if len(all.ConnectToTable) > 0 {
			info("  of which connecting → first table", spread(all.ConnectToTable))
		}
	}
	if len(r.EdgeEnd) > 0 {
		var rss, hwm []int64
		for _, m := range r.EdgeEnd {
			rss, hwm = append(rss, m.RSS), append(hwm, m.HWM)
		}
		row("edge: RSS at end (median / max; peak VmHWM max)", "≤ 150 MB",
			fmt.Sprintf("%s / %s; peak %s", mb(medianInt(rss)), mb(slices.Max(rss)), mb(slices.Max(hwm))), slices.Max(hwm) <= goalEdgeRSS)
	}
	if all != nil && len(all.Idle) > 0 {
		var per []float64 // mean over the windows, per edge
		for i := range all.Idle[0].Edges {
			var sum, secs float64
			for _, w := range all.Idle {
				sum += w.Edges[i] * w.Seconds
				secs += w.Seconds
			}
			per = append(per, sum/secs)
		}
		sort.Float64s(per)
		row("edge: idle CPU (median / max over edges)", "< 0.5% of a core",
			fmt.Sprintf("%s / %s", pct(per[len(per)/2]), pct(per[len(per)-1])), per[len(per)-1] < goalEdgeIdle)
	}
	phases := []*phaseResult{one}
	if all != one {
		phases = append(phases, all)
	}
	for _, ph := range phases {
		if ph == nil {
			continue
		}
		for _, k := range kinds {
			cs := changesOf(ph, k.key)
			if len(cs) == 0 {
				continue
			}
			var lat, slowest, cpu []time.Duration
			var bytes []int64
			mismatch := 0
			for _, c := range cs {
				lat = append(lat, c.Latency...)
				slowest = append(slowest, maxDur(c.Latency))
				cpu = append(cpu, c.EdgeCPU...)
				bytes = append(bytes, c.Bytes)
				mismatch += c.Mismatch
			}
			label := fmt.Sprintf("%s, %d edge(s), %d changes", k.name, ph.Edges, len(cs))
			m := spread(lat)
			if ph.Edges > 1 {
				m += "; slowest edge per change: " + spread(slowest)
			}
			if mismatch > 0 {
				m += fmt.Sprintf("; %d tables not as expected", mismatch)
			}
			row("change → every edge: "+label, "p95 ≤ 500 ms", m, percentile(lat, 95) <= goalPropagation)
			if ph == all || all == nil {
				row("edge CPU per change: "+label, "≤ 10 ms (median)", spread(cpu), median(cpu) <= goalEdgeCPU)
				row("bytes per change, one edge: "+label, "≤ 50 KB", fmt.Sprintf("%d–%d B", slices.Min(bytes), slices.Max(bytes)), slices.Max(bytes) >= 0 && slices.Max(bytes) <= goalEdgeBytes)
			}
		}
	}
	if one != nil && all != nil && all != one {
		a, b := perChange(one), perChange(all)
		ia, ib := perSecond(one), perSecond(all)
		row(fmt.Sprintf("Docker API requests: 1 edge vs %d edges", all.Edges), "independent of edges",
			fmt.Sprintf("per change %.1f vs %.1f; idle %.2f/s vs %.2f/s", a, b, ia, ib), a == b && closeRate(ia, ib))
		info("  by endpoint, per change (1 edge / all)", counts(perChangeBy(one))+" / "+counts(perChangeBy(all)))
	} else if one != nil {
		info("Docker API requests per change, 1 edge", fmt.Sprintf("%.1f (%s); idle %.2f/s", perChange(one), counts(perChangeBy(one)), perSecond(one)))
	}
	if all != nil {
		var ctl []time.Duration
		for _, c := range all.Changes {
			ctl = append(ctl, c.ControlCPU)
		}
		info("control CPU per change (full listing, build, fan-out)", spread(ctl))
	}
	for k, v := range r.ControlMetrics {
		if strings.HasPrefix(k, "swarmgate_swarm_syncs_total") || strings.HasPrefix(k, "swarmgate_control_snapshots_total") {
			info("  "+k, fmt.Sprint(v))
		}
	}
	fmt.Fprintf(tw, "reference (the issue, measured earlier on this machine): NGINX with 10,000 server blocks\t\t10-11 s to test its configuration, 22-35 s from reload to serving, 1.27 GB RSS\t\n")
	tw.Flush()
}

func phaseOf(r *results, edges int) *phaseResult {
	for i := range r.Phases {
		if r.Phases[i].Edges == edges {
			return &r.Phases[i]
		}
	}
	return nil
}

func changesOf(ph *phaseResult, kind string) []changeResult {
	var out []changeResult
	for _, c := range ph.Changes {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// perChange is the mean number of Docker API requests per change.
func perChange(ph *phaseResult) float64 {
	if len(ph.Changes) == 0 {
		return 0
	}
	var n int64
	for _, c := range ph.Changes {
		for _, v := range c.Requests {
			n += v
		}
	}
	return float64(n) / float64(len(ph.Changes))
}

// perChangeBy is the mean number of requests per change, by endpoint.
func perChangeBy(ph *phaseResult) map[string]float64 {
	out := map[string]float64{}
	for _, c := range ph.Changes {
		for k, v := range c.Requests {
			out[k] += float64(v) / float64(len(ph.Changes))
		}
	}
	return out
}

// counts formats request counts by endpoint, in a fixed order.
func counts(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"services", "tasks", "networks", "nodes", "events", "_ping", "version", "other"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

// perSecond is the rate of Docker API requests over the idle windows,
// the open event stream excluded.
func perSecond(ph *phaseResult) float64 {
	var secs float64
	for _, w := range ph.Idle {
		secs += w.Seconds
	}
	var n int64
	for k, v := range ph.IdleRequests {
		if k != "events" {
			n += v
		}
	}
	if secs == 0 {
		return 0
	}
	return float64(n) / secs
}

// closeRate: two idle request rates agree within one resync (4 requests)
// over the longer of the two windows.
func closeRate(a, b float64) bool {
	return a-b < 0.15 && b-a < 0.15
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func maxDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

func medianInt(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// spread is "p50 / p95 / max".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s, p95 %s, max %s", dur(median(ds)), dur(percentile(ds, 95)), dur(maxDur(ds)))
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func mb(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/(1<<20)) }

func pct(cores float64) string { return fmt.Sprintf("%.2f%%", 100*cores) }
