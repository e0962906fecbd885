package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/swarmgate/swarmgate/rollout"
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
}

func newRolloutCmd() *cobra.Command {
	var o rolloutOptions
	cmd := &cobra.Command{
		Use:   "rollout --from OLD --to NEW --edges URL,...",
		Short: "Shift swarmgate.weight from one service to another step by step, rolling back on errors or latency",
		Long: `Shift traffic from the service OLD to the service NEW, two services that
publish the same host and path, by setting their swarmgate.weight labels
(NEW gets p, OLD 100-p, for each step p) through the Docker Engine API, as
docker service update --label-add would (the engine of --docker, DOCKER_HOST
or the current Docker context). After
each step's interval it reads every edge's /metrics and compares the two
services over that interval: when NEW's 5xx ratio is above --max-error-ratio,
or its p99 above --max-p99-ratio times OLD's, the weights go back to what they
were and the command exits non-zero with the figures. At 100 OLD is left at
weight 0 (scale it down yourself). Interrupted (Ctrl-C), it leaves the weights
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
	p := &rolloutPrinter{w: stdout, json: o.json, old: o.from, new: o.to}
	res, err := rollout.Run(ctx, rollout.Options{
		Old: o.from, New: o.to, Steps: steps, Interval: o.interval,
		Thresholds: rollout.Thresholds{MaxErrorRatio: o.maxErrorRatio, MaxP99Ratio: o.maxP99Ratio, P99Slack: o.p99Slack},
		Weights:    dockerWeights{cli: cli, old: o.from, new: o.to},
		Metrics:    &edgeMetrics{urls: edges, services: []string{o.from, o.to}, client: &http.Client{Timeout: 10 * time.Second}},
		Clock:      rollout.SystemClock{},
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

// weightLabel is the label a rollout sets on both services.
const weightLabel = "swarmgate.weight"

// dockerWeights reads and sets the two services' weight labels through the
// Docker Engine API. Changing a label updates the service spec only: no task
// restarts.
type dockerWeights struct {
	cli      *client.Client
	old, new string
}

func (d dockerWeights) weight(ctx context.Context, name string) (int, swarm.Service, error) {
	svc, _, err := d.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		return 0, svc, fmt.Errorf("service %s: %w", name, err)
	}
	v, ok := svc.Spec.Labels[weightLabel]
	if !ok {
		return 100, svc, nil // the label's default
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, svc, fmt.Errorf("service %s: %s=%q: %w", name, weightLabel, v, err)
	}
	return n, svc, nil
}

func (d dockerWeights) Get(ctx context.Context) (int, int, error) {
	o, _, err := d.weight(ctx, d.old)
	if err != nil {
		return 0, 0, err
	}
	n, _, err := d.weight(ctx, d.new)
	return o, n, err
}

// Set raises the weight that goes up before it lowers the other, so that
// the two are never both 0 on the way.
func (d dockerWeights) Set(ctx context.Context, old, new int) error {
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

func (d dockerWeights) set(ctx context.Context, name string, w int) error {
	cur, svc, err := d.weight(ctx, name)
	if err != nil {
		return err
	}
	if _, ok := svc.Spec.Labels[weightLabel]; ok && cur == w {
		return nil
	}
	spec := svc.Spec
	labels := make(map[string]string, len(spec.Labels)+1)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[weightLabel] = strconv.Itoa(w)
	spec.Labels = labels
	if _, err := d.cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		return fmt.Errorf("service %s: setting %s=%d: %w", name, weightLabel, w, err)
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
