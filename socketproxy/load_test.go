package socketproxy

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// The defaults keep `go test` fast; the figures in the README come from
//
//	go test -run TestMeasureLoad -v ./socketproxy -socketproxy.edges=1,50 -socketproxy.duration=10s
var (
	measureEdges    = flag.String("socketproxy.edges", "1,5", "TestMeasureLoad: comma list of simulated edge counts")
	measureDuration = flag.Duration("socketproxy.duration", time.Second, "TestMeasureLoad: how long each simulation runs")
)

// pollInterval is how often a simulated edge lists services and tasks.
const pollInterval = 250 * time.Millisecond

// TestMeasureLoad simulates edges against the real Engine through the proxy:
// each polls /services and /tasks every 250 ms (at its own random phase) and
// watches /events. It counts, at a tap in front of the Docker socket, the
// requests the Engine actually receives.
func TestMeasureLoad(t *testing.T) {
	requireEngine(t)
	for _, f := range strings.Split(*measureEdges, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 500 {
			t.Fatalf("-socketproxy.edges: bad count %q", f)
		}
		t.Run(fmt.Sprintf("edges=%d", n), func(t *testing.T) { measureLoad(t, n, *measureDuration) })
	}
}

func measureLoad(t *testing.T, edges int, d time.Duration) {
	if d <= 0 || d > 2*time.Minute {
		t.Fatalf("-socketproxy.duration %v out of range", d)
	}
	tap := startTap(t, dockerSock)
	tp := startProxy(t, Options{Upstream: "tcp://" + tap.addr, Logger: zap.NewNop()}, nil)
	const kinds = "filters=%7B%22type%22%3A%5B%22service%22%2C%22network%22%2C%22node%22%5D%7D"

	watchCtx, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	var polls, failures atomic.Int64
	var wg sync.WaitGroup
	clients := make([]*http.Client, edges)
	for i := range clients {
		clients[i] = newClient(t) // every edge has its own connections
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(watchCtx, "GET", tp.url+"/v1.41/events?"+kinds, nil)
			resp, err := clients[i].Do(req)
			if err != nil {
				failures.Add(1)
				return
			}
			if resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	waitFor(t, "every edge to watch events", func() bool { return testkit.MetricValue(t, tp.m.subscribers) == float64(edges) })

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rng := rand.New(rand.NewPCG(1, uint64(edges)))
	var pollers sync.WaitGroup
	for i := range edges {
		phase := time.Duration(rng.Int64N(int64(pollInterval)))
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			tick := time.NewTimer(phase)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				tick.Reset(pollInterval)
				for _, path := range []string{"/v1.41/services", "/v1.41/tasks"} {
					req, _ := http.NewRequestWithContext(ctx, "GET", tp.url+path, nil)
					resp, err := clients[i].Do(req)
					if err != nil {
						if ctx.Err() == nil {
							failures.Add(1)
						}
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failures.Add(1)
					}
					polls.Add(1)
				}
			}
		}()
	}
	pollers.Wait()
	stopWatching()
	wg.Wait()

	var upPolls, upStreams, upOther int
	for _, r := range tap.requests() {
		switch {
		case r == "GET /v1.41/services" || r == "GET /v1.41/tasks":
			upPolls++
		case strings.HasPrefix(r, "GET /v1.41/events?"):
			upStreams++
		default:
			upOther++
		}
	}
	secs := d.Seconds()
	coalesced := testkit.MetricValue(t, tp.m.coalesced.WithLabelValues(string(EndpointServices))) +
		testkit.MetricValue(t, tp.m.coalesced.WithLabelValues(string(EndpointTasks)))
	t.Logf("edges=%d over %v: edges sent %d polls (%.1f/s) and held %d event streams; "+
		"the Engine got %d polls (%.1f/s, %.0f%% of direct; %.0f coalesced) and %d event stream(s); "+
		"Engine API requests/s: %.1f through the proxy vs %.1f direct",
		edges, d, polls.Load(), float64(polls.Load())/secs, edges,
		upPolls, float64(upPolls)/secs, 100*float64(upPolls)/float64(max(polls.Load(), 1)), coalesced, upStreams,
		float64(upPolls+upStreams)/secs, float64(polls.Load()+int64(edges))/secs)

	if n := failures.Load(); n != 0 {
		t.Errorf("%d failed requests", n)
	}
	if polls.Load() == 0 {
		t.Fatal("no poll completed")
	}
	if upStreams != 1 {
		t.Errorf("upstream event streams = %d for %d watchers, want 1", upStreams, edges)
	}
	// Requests cut off by the end of the run may have reached the Engine
	// without being counted as edge polls: at most two per edge.
	if int64(upPolls) > polls.Load()+2*int64(edges) || upOther != 0 {
		t.Errorf("the Engine got %d polls for %d edge polls (other requests: %d)", upPolls, polls.Load(), upOther)
	}
}
