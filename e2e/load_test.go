package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// loadConfig describes a constant load: Rate requests per second spread over
// KeepAlive clients that reuse their connections and Fresh clients that open
// a new connection per request, for at most Duration and MaxRequests.
type loadConfig struct {
	URL         string        // e.g. "http://127.0.0.1:18080/"
	Host        string        // Host header
	Rate        int           // requests per second, all clients together
	KeepAlive   int           // clients with HTTP/1.1 keep-alive
	Fresh       int           // clients with a new connection per request
	Duration    time.Duration // the load stops after this long ...
	MaxRequests int           // ... or after this many requests, whichever comes first
	Timeout     time.Duration // per request; 10s if zero
	Record      bool          // keep every request's timing in loadResult.Samples
}

// sample is one request as the load generator saw it.
type sample struct {
	Start, End time.Time
	Code       int // 0 on a transport error
	Task       string
	Err        string
}

// loadResult counts what a load run saw.
type loadResult struct {
	Requests  int
	OK        int            // 2xx
	Status    map[int]int    // non-2xx by code
	Transport int            // transport errors (no response)
	Messages  []string       // a sample of transport error messages, distinct
	Tasks     map[string]int // 2xx answers by echo task
	Services  map[string]int // 2xx answers by echo service
	Elapsed   time.Duration
	Samples   []sample // with loadConfig.Record
}

// Errors is the count of requests that did not get a 2xx answer.
func (r loadResult) Errors() int { return r.Requests - r.OK }

// RatePerSec is the rate that was achieved.
func (r loadResult) RatePerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests (%.0f/s), %d errors (non-2xx %v, transport %d %q), tasks %v",
		r.Requests, r.RatePerSec(), r.Errors(), r.Status, r.Transport, r.Messages, r.Tasks)
}

const maxMessages = 8

// runLoad sends GETs at a constant rate until ctx is done, cfg.Duration has
// passed or cfg.MaxRequests were sent, and returns once every request has
// finished. Each client paces itself on its own schedule (open loop: a late
// request is sent at once rather than skipped), so a slow answer on one
// connection does not slow the others.
func runLoad(ctx context.Context, cfg loadConfig) loadResult {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	var mu sync.Mutex
	res := loadResult{Status: map[int]int{}, Tasks: map[string]int{}, Services: map[string]int{}}
	record := func(s sample, service string) {
		mu.Lock()
		defer mu.Unlock()
		res.Requests++
		switch {
		case s.Err != "" && s.Code == 0:
			res.Transport++
			if len(res.Messages) < maxMessages && !slices.Contains(res.Messages, s.Err) {
				res.Messages = append(res.Messages, s.Err)
			}
		case s.Code >= 200 && s.Code < 300:
			res.OK++
			res.Tasks[s.Task]++
			res.Services[service]++
		default:
			res.Status[s.Code]++
		}
		if cfg.Record {
			res.Samples = append(res.Samples, s)
		}
	}

	res.Elapsed = testkit.Pace(ctx, testkit.PaceOptions{Rate: cfg.Rate, KeepAlive: cfg.KeepAlive, Fresh: cfg.Fresh,
		Duration: cfg.Duration, Max: cfg.MaxRequests, RequestTimeout: cfg.Timeout},
		func(c *http.Client) { record(getOnce(c, cfg)) })
	return res
}

// getOnce sends one request and reads the echo answer. It does not use the
// load's context: a request that was sent is always seen through.
func getOnce(c *http.Client, cfg loadConfig) (sample, string) {
	s := sample{Start: time.Now()}
	req, err := http.NewRequest(http.MethodGet, cfg.URL, nil)
	if err != nil {
		panic(err) // a bad URL is a bug in the test
	}
	req.Host = cfg.Host
	resp, err := c.Do(req)
	if err != nil {
		s.Err, s.End = trimErr(err), time.Now()
		return s, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	s.End = time.Now()
	if err != nil {
		// The answer was cut: as much a loss as no answer.
		s.Err = "reading body: " + trimErr(err)
		return s, ""
	}
	s.Code = resp.StatusCode
	var a answer
	if s.Code >= 200 && s.Code < 300 {
		if err := json.Unmarshal(body, &a); err != nil {
			s.Code, s.Err = 0, fmt.Sprintf("not an echo answer: %.80q", body)
			return s, ""
		}
		s.Task = a.Task
	} else {
		s.Err = fmt.Sprintf("%d %.120s", s.Code, strings.TrimSpace(string(body)))
	}
	return s, a.Service
}

// trimErr drops the URL from an error so that equal causes compare equal.
func trimErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "\": "); i >= 0 {
		msg = msg[i+3:]
	}
	return msg
}
