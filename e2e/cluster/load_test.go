//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// The load every scenario runs through HAProxy: at least 500 req/s (the
// acceptance floor) over keep-alive clients and clients that open a
// connection per request, every non-2xx answer and transport error counted,
// each attributed to the edge HAProxy sent it to (its X-Edge header).
const (
	loadRate    = 600
	loadMinRate = 500
	loadMax     = 90 * time.Second // no scenario's load runs longer
)

// loadConfig describes a constant load, bounded in time and count.
type loadConfig struct {
	URL         string
	Host        string
	Rate        int // requests per second, all clients together
	KeepAlive   int // clients that reuse their connection
	Fresh       int // clients with a new connection per request
	Duration    time.Duration
	MaxRequests int
	Timeout     time.Duration // per request; 10 s (a client's patience) if zero
}

func scenarioLoad() loadConfig {
	return loadConfig{URL: "http://" + lbAddr + "/", Host: appHost, Rate: loadRate, KeepAlive: 32, Fresh: 8,
		Duration: loadMax, MaxRequests: loadRate * int(loadMax/time.Second)}
}

// edgeCount is what went through one edge (HAProxy's server name).
type edgeCount struct {
	Requests, OK int
	Status       map[int]int
	Tasks        map[string]int // 2xx answers by echo task (node-slot)
}

// loadResult counts what a load run saw.
type loadResult struct {
	Requests  int
	OK        int
	Status    map[int]int // non-2xx by code
	Transport int         // no answer at all
	Messages  []string    // distinct error messages, a sample
	Edges     map[string]*edgeCount
	Elapsed   time.Duration
}

func (r loadResult) Errors() int { return r.Requests - r.OK }

func (r loadResult) RatePerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// errorsOn counts the failed requests HAProxy had sent to the named edge.
func (r loadResult) errorsOn(edge string) int {
	if c := r.Edges[edge]; c != nil {
		return c.Requests - c.OK
	}
	return 0
}

func (r loadResult) String() string {
	var edges []string
	for name, c := range r.Edges {
		edges = append(edges, fmt.Sprintf("%s: %d requests, %d errors %v, tasks %v", name, c.Requests, c.Requests-c.OK, c.Status, c.Tasks))
	}
	slices.Sort(edges)
	return fmt.Sprintf("%d requests (%.0f/s over %s), %d errors (non-2xx %v, transport %d %q); by edge [%s]",
		r.Requests, r.RatePerSec(), r.Elapsed.Round(time.Millisecond), r.Errors(), r.Status, r.Transport,
		r.Messages, strings.Join(edges, "; "))
}

// sample is one request.
type sample struct {
	code int // 0: transport error
	edge string
	task string
	err  string
}

// runLoad sends GETs at a constant rate until ctx ends, Duration passes or
// MaxRequests were sent, and returns once every request has finished. Each
// client keeps its own schedule (open loop), so one slow answer does not
// slow the others.
func runLoad(ctx context.Context, cfg loadConfig) loadResult {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	var mu sync.Mutex
	res := loadResult{Status: map[int]int{}, Edges: map[string]*edgeCount{}}
	record := func(s sample) {
		mu.Lock()
		defer mu.Unlock()
		res.Requests++
		ec := res.Edges[s.edge]
		if s.edge != "" && ec == nil {
			ec = &edgeCount{Status: map[int]int{}, Tasks: map[string]int{}}
			res.Edges[s.edge] = ec
		}
		if ec != nil {
			ec.Requests++
		}
		switch {
		case s.code >= 200 && s.code < 300:
			res.OK++
			if ec != nil {
				ec.OK++
				ec.Tasks[s.task]++
			}
			return
		case s.code == 0:
			res.Transport++
		default:
			res.Status[s.code]++
			if ec != nil {
				ec.Status[s.code]++
			}
		}
		if len(res.Messages) < 8 && !slices.Contains(res.Messages, s.err) {
			res.Messages = append(res.Messages, s.err)
		}
	}
	res.Elapsed = testkit.Pace(ctx, testkit.PaceOptions{Rate: cfg.Rate, KeepAlive: cfg.KeepAlive, Fresh: cfg.Fresh,
		Duration: cfg.Duration, Max: cfg.MaxRequests, RequestTimeout: cfg.Timeout},
		func(c *http.Client) { record(getOnce(c, cfg)) })
	return res
}

// getOnce sends one request, outside the load's context: a request that was
// sent is seen through.
func getOnce(c *http.Client, cfg loadConfig) sample {
	req, err := http.NewRequest(http.MethodGet, cfg.URL, nil)
	if err != nil {
		panic(err)
	}
	req.Host = cfg.Host
	resp, err := c.Do(req)
	if err != nil {
		return sample{err: trimErr(err)}
	}
	defer resp.Body.Close()
	s := sample{edge: resp.Header.Get("X-Edge")}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		s.err = "reading body: " + trimErr(err)
		return s
	}
	s.code = resp.StatusCode
	if s.code < 200 || s.code >= 300 {
		s.err = fmt.Sprintf("%d via %q: %.100s", s.code, s.edge, strings.TrimSpace(string(body)))
		return s
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		s.code, s.err = 0, fmt.Sprintf("not an echo answer: %.80q", body)
		return s
	}
	s.task = a.Task
	return s
}

func trimErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "\": "); i >= 0 {
		msg = msg[i+3:]
	}
	return msg
}

// answer is what the echo service returns.
type answer struct {
	Service string `json:"service"`
	Task    string `json:"task"`
}

// background is a load running while a scenario acts.
type background struct {
	cancel context.CancelFunc
	done   chan loadResult
}

func startLoad(cfg loadConfig) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan loadResult, 1)}
	go func() { b.done <- runLoad(ctx, cfg) }()
	return b
}

// stop ends the load and returns its counts; it fails the test if the load
// had ended by itself (its bound) before the scenario was over.
func (b *background) stop(t *testing.T) loadResult {
	t.Helper()
	select {
	case res := <-b.done:
		b.cancel()
		t.Errorf("the load ended (bound %s) before the scenario did", loadMax)
		return res
	default:
	}
	b.cancel()
	return <-b.done
}

// checkRate fails a scenario whose load fell below the acceptance floor.
func checkRate(t *testing.T, scenario string, res loadResult) {
	t.Helper()
	if res.RatePerSec() < loadMinRate {
		t.Errorf("%s: load reached %.0f req/s; want at least %d", scenario, res.RatePerSec(), loadMinRate)
	}
}
