package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/rollout"
	"github.com/swarmgate/swarmgate/route"
)

// rolloutOptions are the flags of `swarmgate rollout`.
type rolloutOptions struct {
	from, to      string
	steps         string
	interval      time.Duration
	maxErrorRatio float64
	maxP99Ratio   float64
	p99Slack      time.Duration
	edges         string
	json          bool
	docker        string
	labels        discovery.Dialects
	clock         rollout.Clock // waits out each step's interval
}

func newRolloutCmd() *cobra.Command { return rolloutCmd(rollout.SystemClock{}) }

// rolloutCmd is the rollout command whose steps are timed by clock.
func rolloutCmd(clock rollout.Clock) *cobra.Command {
	o := rolloutOptions{clock: clock}
	cmd := &cobra.Command{
		Use:   "rollout --from OLD --to NEW --edges URL,...",
		Short: "Shift swarmgate.weight from one service to another step by step, rolling back on errors or latency",
		Long: `Shift traffic from the service OLD to the service NEW, two services that
publish the same host and path, by setting their weight labels (NEW gets p,
OLD 100-p, for each step p) through the Docker Engine API, as docker service
update --label-add would (the engine of --docker, DOCKER_HOST or the current
Docker context). The labels are those of the routes the two share, read with
--labels as the edges read them: swarmgate.weight for a service's default
route, swarmgate.routes.<name>.weight for a named route or a Traefik router;
services that share none, or whose labels the weights would make invalid,
are refused before anything moves. After
each step's interval it reads every edge's /metrics and compares the two
services over that interval: when NEW's 5xx ratio is above --max-error-ratio,
or its p99 above --max-p99-ratio times OLD's, the weights go back to what they
were and the command exits non-zero with the figures. A step that cannot be
judged fails too: its metrics could not be read, no request reached either
service, or NEW answered none of the 10 or more requests its weight should
have brought it (an edge gives the share of a service with no task in
rotation to the other). At 100 OLD is left at weight 0 (scale it down
yourself). Interrupted (Ctrl-C), it leaves the weights
where the last judged step put them and says so.`,
		Example: `  swarmgate rollout --from shop_web-v1 --to shop_web-v2 \
    --edges http://edge1:8080,http://edge2:8080 --steps 1,5,25,50,100 --interval 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runRollout(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "the service traffic moves from (OLD)")
	f.StringVar(&o.to, "to", "", "the service traffic moves to (NEW)")
	f.StringVar(&o.steps, "steps", "1,5,25,50,100", "NEW's percentages of the weight, increasing, ending at 100")
	f.DurationVar(&o.interval, "interval", time.Minute, "how long each step runs before it is judged")
	f.Float64Var(&o.maxErrorRatio, "max-error-ratio", 0.01, "largest share of NEW's requests answered 5xx in a step")
	f.Float64Var(&o.maxP99Ratio, "max-p99-ratio", 1.5, "largest NEW p99 as a multiple of OLD's over the same step (judged from 100 requests of each)")
	f.DurationVar(&o.p99Slack, "p99-slack", 5*time.Millisecond, "a NEW p99 within this of OLD's passes whatever the ratio (the histogram's buckets are coarser than the ratio on fast services)")
	f.StringVar(&o.edges, "edges", "", "the edges' admin URLs, comma-separated (http://edge:8080); /metrics is read from each")
	f.BoolVar(&o.json, "json", false, "print one JSON object a line instead of text")
	f.StringVar(&o.docker, "docker", "", "Docker Engine API of a manager (default: DOCKER_HOST, else the current Docker context, as docker itself)")
	labelsFlag(f, &o.labels)
	// SWARMGATE_DOCKER is the edge's address, not the operator's engine.
	f.SetAnnotation("docker", noEnv, []string{"true"})
	return cmd
}

// parseSteps reads a comma list of percentages.
func parseSteps(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--steps %q: %w", s, err)
		}
		out = append(out, n)
	}
	if err := rollout.CheckSteps(out); err != nil {
		return nil, fmt.Errorf("--steps: %w", err)
	}
	return out, nil
}

func runRollout(ctx context.Context, o rolloutOptions, stdout io.Writer) error {
	if o.from == "" || o.to == "" || o.from == o.to {
		return errors.New("rollout: --from and --to name two services")
	}
	steps, err := parseSteps(o.steps)
	if err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	var edges []string
	for _, e := range strings.Split(o.edges, ",") {
		if e = strings.TrimRight(strings.TrimSpace(e), "/"); e != "" {
			edges = append(edges, e)
		}
	}
	if len(edges) == 0 {
		return errors.New("rollout: --edges: give the admin URL of every edge")
	}
	if o.interval <= 0 || o.maxErrorRatio < 0 || o.maxP99Ratio <= 0 || o.p99Slack < 0 {
		return errors.New("rollout: --interval and --max-p99-ratio must be positive, --max-error-ratio and --p99-slack not negative")
	}
	opts, err := rolloutDockerOpts(o.docker)
	if err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return fmt.Errorf("rollout: docker client: %w", err)
	}
	defer cli.Close()
	weights := &dockerWeights{cli: cli, old: o.from, new: o.to, dialects: o.labels}
	if err := weights.plan(ctx); err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	p := &rolloutPrinter{w: stdout, json: o.json, old: o.from, new: o.to}
	res, err := rollout.Run(ctx, rollout.Options{
		Old: o.from, New: o.to, Steps: steps, Interval: o.interval,
		Thresholds: rollout.Thresholds{MaxErrorRatio: o.maxErrorRatio, MaxP99Ratio: o.maxP99Ratio, P99Slack: o.p99Slack},
		Weights:    weights,
		Metrics:    &edgeMetrics{urls: edges, services: []string{o.from, o.to}, client: &http.Client{Timeout: 10 * time.Second}},
		Clock:      o.clock,
		Progress:   p.step,
	})
	p.end(res, err)
	return err
}

// rolloutDockerOpts picks the Docker Engine as the docker CLI does: --docker,
// else DOCKER_HOST (with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the
// current Docker context.
func rolloutDockerOpts(flag string) ([]client.Opt, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	switch {
	case flag != "":
		return append(opts, client.WithHost(flag)), nil
	case os.Getenv("DOCKER_HOST") != "":
		return opts, nil
	}
	home, _ := os.UserHomeDir()
	host, tlsDir, err := dockerContext(os.Getenv, home)
	if err != nil || host == "" {
		return opts, err
	}
	opts = append(opts, client.WithHost(host))
	if tlsDir != "" {
		opts = append(opts, client.WithTLSClientConfig(filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")))
	}
	return opts, nil
}

// rolloutPrinter prints the progress as text or JSON lines.
type rolloutPrinter struct {
	w        io.Writer
	json     bool
	old, new string
}

// stepLine is a step in --json.
type stepLine struct {
	Event       string   `json:"event"` // step
	Step        int      `json:"step"`
	Of          int      `json:"of"`
	Percent     int      `json:"percent"`
	OldWeight   int      `json:"old_weight"`
	NewWeight   int      `json:"new_weight"`
	OldRequests float64  `json:"old_requests"`
	NewRequests float64  `json:"new_requests"`
	OldErrors   float64  `json:"old_errors"`
	NewErrors   float64  `json:"new_errors"`
	OldErrRatio float64  `json:"old_error_ratio"`
	NewErrRatio float64  `json:"new_error_ratio"`
	OldP99      *float64 `json:"old_p99_seconds"` // null without requests
	NewP99      *float64 `json:"new_p99_seconds"`
	OK          bool     `json:"ok"`
	Reason      string   `json:"reason,omitempty"`
}

// endLine is the last line in --json.
type endLine struct {
	Event     string `json:"event"` // done, rolled_back, interrupted, failed
	OldWeight int    `json:"old_weight"`
	NewWeight int    `json:"new_weight"`
	Error     string `json:"error,omitempty"`
}

func p99(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

func p99Text(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return time.Duration(v * float64(time.Second)).Round(100 * time.Microsecond).String()
}

func (p *rolloutPrinter) step(s rollout.Step) {
	if p.json {
		json.NewEncoder(p.w).Encode(stepLine{Event: "step", Step: s.N, Of: s.Of, Percent: s.Percent, OldWeight: s.OldWeight, NewWeight: s.NewWeight,
			OldRequests: s.Old.Requests, NewRequests: s.NewStats.Requests, OldErrors: s.Old.Errors, NewErrors: s.NewStats.Errors,
			OldErrRatio: s.OldRatio, NewErrRatio: s.NewRatio, OldP99: p99(s.OldP99), NewP99: p99(s.NewP99), OK: s.Verdict.OK, Reason: s.Verdict.Reason})
		return
	}
	verdict := "ok"
	if !s.Verdict.OK {
		verdict = "FAILED: " + s.Verdict.Reason
	}
	fmt.Fprintf(p.w, "step %d/%d: %s %d, %s %d | %s: %.0f requests, %.2f%% errors, p99 %s | %s: %.0f requests, %.2f%% errors, p99 %s | %s\n",
		s.N, s.Of, p.old, s.OldWeight, p.new, s.NewWeight,
		p.old, s.Old.Requests, 100*s.OldRatio, p99Text(s.OldP99),
		p.new, s.NewStats.Requests, 100*s.NewRatio, p99Text(s.NewP99), verdict)
}

func (p *rolloutPrinter) end(res rollout.Result, err error) {
	event, text := "done", fmt.Sprintf("done: %s at weight %d, %s at %d (scale %s down when ready)", p.new, res.NewWeight, p.old, res.OldWeight, p.old)
	switch {
	case errors.Is(err, rollout.ErrInterrupted):
		event, text = "interrupted", fmt.Sprintf("interrupted: weights left where the last judged step put them: %s %d, %s %d", p.old, res.OldWeight, p.new, res.NewWeight)
	case errors.Is(err, rollout.ErrRolledBack):
		event, text = "rolled_back", fmt.Sprintf("rolled back: %s %d, %s %d", p.old, res.OldWeight, p.new, res.NewWeight)
	case err != nil:
		event, text = "failed", fmt.Sprintf("failed: %v (weights: %s %d, %s %d)", err, p.old, res.OldWeight, p.new, res.NewWeight)
	}
	if p.json {
		l := endLine{Event: event, OldWeight: res.OldWeight, NewWeight: res.NewWeight}
		if err != nil {
			l.Error = err.Error()
		}
		json.NewEncoder(p.w).Encode(l)
		return
	}
	fmt.Fprintln(p.w, text)
}

// dockerWeights reads and sets the two services' weight labels through the
// Docker Engine API. Changing a label updates the service spec only: no task
// restarts.
type dockerWeights struct {
	cli      *client.Client
	old, new string
	dialects discovery.Dialects
	// keys are the weight labels of each service, by name: those of the
	// routes the two share (plan).
	keys map[string][]string
}

// weightLabel is the weight of a service's default route; a named route's
// (a swarmgate.routes.<name>.* route, a Traefik router) is
// swarmgate.routes.<name>.weight.
const weightLabel = "swarmgate.weight"

// routeWeightLabel is the label that sets the weight of route r.
func routeWeightLabel(r route.Route) string {
	if r.Name == "" {
		return weightLabel
	}
	return "swarmgate.routes." + r.Name + ".weight"
}

// routeAt is where an HTTP route serves: the routes of two services with
// the same are one weighted group on the edges.
func routeAt(r route.Route) string {
	hosts := slices.Clone(r.Hosts)
	slices.Sort(hosts)
	if r.Default {
		hosts = []string{"(default)"}
	}
	path := r.Path
	if r.Exact {
		path = "= " + path
	}
	return strings.Join(hosts, ",") + " " + path
}

// plan works out the weight labels to set: those of every HTTP route OLD
// and NEW share, read as the edges read the labels (--labels). It refuses
// services that share no route, whose labels are invalid already, or whose
// labels a weight would make invalid or not change (a dialect not read).
func (d *dockerWeights) plan(ctx context.Context) error {
	svcs := map[string]swarm.Service{}
	routes := map[string]map[string]route.Route{} // service -> routeAt -> route
	for _, name := range []string{d.old, d.new} {
		svc, _, err := d.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		rs, errs := discovery.ParseLabelsFor(name, svc.Spec.Labels, d.dialects)
		if len(errs) > 0 {
			return fmt.Errorf("service %s is skipped by the edges, its labels are invalid: %v (swarmgate check --docker lists them all)", name, errs[0])
		}
		svcs[name], routes[name] = svc, map[string]route.Route{}
		for _, r := range rs {
			if r.TCPPort == 0 && len(r.SNI) == 0 {
				routes[name][routeAt(r)] = r
			}
		}
	}
	var shared []string
	for at := range routes[d.old] {
		if _, ok := routes[d.new][at]; ok {
			shared = append(shared, at)
		}
	}
	slices.Sort(shared)
	if len(shared) == 0 {
		hint := ""
		for _, name := range []string{d.old, d.new} {
			if _, ok := svcs[name].Spec.Labels["traefik.enable"]; ok && d.dialects&discovery.DialectTraefik == 0 {
				hint = fmt.Sprintf(" (%s has Traefik labels: read them with --labels swarmgate,interlock,traefik, as the edges do)", name)
			}
		}
		return fmt.Errorf("%s and %s share no host and path, so no weight splits traffic between them: %s publishes %s, %s publishes %s%s",
			d.old, d.new, d.old, describeRoutes(routes[d.old]), d.new, describeRoutes(routes[d.new]), hint)
	}
	d.keys = map[string][]string{}
	for _, name := range []string{d.old, d.new} {
		weight := -1
		for _, at := range shared {
			r := routes[name][at]
			if weight >= 0 && r.Weight != weight {
				return fmt.Errorf("service %s: the routes it shares with %s have different weights (%d and %d): give them one weight first", name, map[bool]string{true: d.new, false: d.old}[name == d.old], weight, r.Weight)
			}
			weight = r.Weight
			if k := routeWeightLabel(r); !slices.Contains(d.keys[name], k) {
				d.keys[name] = append(d.keys[name], k)
			}
		}
		// The labels with a weight set must still be read, and give it.
		for _, w := range []int{0, 50} {
			labels := maps.Clone(svcs[name].Spec.Labels)
			for _, k := range d.keys[name] {
				labels[k] = strconv.Itoa(w)
			}
			rs, errs := discovery.ParseLabelsFor(name, labels, d.dialects)
			if len(errs) > 0 {
				return fmt.Errorf("service %s: setting %s=%d would make its labels invalid: %v", name, strings.Join(d.keys[name], ", "), w, errs[0])
			}
			for _, r := range rs {
				if slices.Contains(shared, routeAt(r)) && r.Weight != w {
					return fmt.Errorf("service %s: setting %s=%d leaves route %s at weight %d (are swarmgate labels read? --labels %s)", name, strings.Join(d.keys[name], ", "), w, routeAt(r), r.Weight, d.dialects)
				}
			}
		}
	}
	return nil
}

func describeRoutes(rs map[string]route.Route) string {
	if len(rs) == 0 {
		return "no HTTP route"
	}
	return strings.Join(slices.Sorted(maps.Keys(rs)), "; ")
}

// weight reads the weight a service's labels give its shared routes (plan
// made them one), 100 where the label is not set.
func (d *dockerWeights) weight(ctx context.Context, name string) (int, swarm.Service, error) {
	svc, _, err := d.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		return 0, svc, fmt.Errorf("service %s: %w", name, err)
	}
	keys := d.keys[name]
	if len(keys) == 0 {
		return 0, svc, fmt.Errorf("service %s: no weight label planned", name)
	}
	v, ok := svc.Spec.Labels[keys[0]]
	if !ok {
		return 100, svc, nil // the label's default
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, svc, fmt.Errorf("service %s: %s=%q: %w", name, keys[0], v, err)
	}
	return n, svc, nil
}

func (d *dockerWeights) Get(ctx context.Context) (int, int, error) {
	o, _, err := d.weight(ctx, d.old)
	if err != nil {
		return 0, 0, err
	}
	n, _, err := d.weight(ctx, d.new)
	return o, n, err
}

// Set raises the weight that goes up before it lowers the other, so that
// the two are never both 0 on the way.
func (d *dockerWeights) Set(ctx context.Context, old, new int) error {
	cur, _, err := d.weight(ctx, d.old)
	if err != nil {
		return err
	}
	order := []struct {
		name string
		w    int
	}{{d.new, new}, {d.old, old}}
	if old > cur {
		order[0], order[1] = order[1], order[0]
	}
	for _, s := range order {
		if err := d.set(ctx, s.name, s.w); err != nil {
			return err
		}
	}
	return nil
}

// set gives every weight label of a service the weight w, in one update.
func (d *dockerWeights) set(ctx context.Context, name string, w int) error {
	_, svc, err := d.weight(ctx, name)
	if err != nil {
		return err
	}
	value := strconv.Itoa(w)
	spec := svc.Spec
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	changed := false
	for _, k := range d.keys[name] {
		if labels[k] != value {
			labels[k], changed = value, true
		}
	}
	if !changed {
		return nil
	}
	spec.Labels = labels
	if _, err := d.cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		return fmt.Errorf("service %s: setting %s=%d: %w", name, strings.Join(d.keys[name], ", "), w, err)
	}
	return nil
}

// edgeMetrics reads /metrics of every edge.
type edgeMetrics struct {
	urls     []string
	services []string
	client   *http.Client
}

func (m *edgeMetrics) Read(ctx context.Context) ([]rollout.Sample, error) {
	out := make([]rollout.Sample, len(m.urls))
	for i, u := range m.urls {
		req, err := http.NewRequestWithContext(ctx, "GET", u+"/metrics", nil)
		if err != nil {
			return nil, fmt.Errorf("edge %s: %w", u, err)
		}
		resp, err := m.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("edge %s: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("edge %s: /metrics answered %s", u, resp.Status)
		}
		s, err := rollout.ParseMetrics(resp.Body, m.services...)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("edge %s: %w", u, err)
		}
		out[i] = s
	}
	return out, nil
}
