// Package rollout is the decision logic of `swarmgate rollout`: it shifts
// traffic from one service to another in steps and, after each, compares
// what the edges measured for the two, rolling back when the new one does
// worse than the thresholds allow. The weights, the metrics and the clock are
// injected: the package makes no call of its own.
package rollout

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The edge's metrics that a rollout reads (docs/metrics.md).
const (
	requestsMetric = "swarmgate_http_requests_total"           // route, service, code
	durationMetric = "swarmgate_http_request_duration_seconds" // route, service
)

// Stats are one service's counters on one edge, or their sum or difference:
// requests answered, of which 5xx (errors), and the latency histogram's
// cumulative buckets by upper bound (the last one +Inf).
type Stats struct {
	Requests float64
	Errors   float64
	Buckets  []Bucket
}

// Bucket is a cumulative histogram bucket: Count observations took at most
// UpperBound seconds.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Sample is one edge's Stats by service name.
type Sample map[string]Stats

// ParseMetrics reads the Stats of services from an edge's /metrics (the
// Prometheus text format), summed over the routes of each service. A
// service without a series has zero Stats.
func ParseMetrics(r io.Reader, services ...string) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("rollout: metrics: %w", err)
	}
	want := make(map[string]bool, len(services))
	s := make(Sample, len(services))
	for _, name := range services {
		want[name] = true
		s[name] = Stats{}
	}
	if f := fams[requestsMetric]; f != nil {
		for _, m := range f.GetMetric() {
			svc := label(m, "service")
			if !want[svc] {
				continue
			}
			st := s[svc]
			v := m.GetCounter().GetValue()
			st.Requests += v
			if code, err := strconv.Atoi(label(m, "code")); err == nil && code >= 500 && code <= 599 {
				st.Errors += v
			}
			s[svc] = st
		}
	}
	if f := fams[durationMetric]; f != nil {
		for _, m := range f.GetMetric() {
			svc := label(m, "service")
			if !want[svc] {
				continue
			}
			st := s[svc]
			st.Buckets = addBuckets(st.Buckets, histogramBuckets(m.GetHistogram()), 1)
			s[svc] = st
		}
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// histogramBuckets are h's buckets with the +Inf one, which the text format
// carries as the sample count.
func histogramBuckets(h *dto.Histogram) []Bucket {
	out := make([]Bucket, 0, len(h.GetBucket())+1)
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			out = append(out, Bucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
		}
	}
	return append(out, Bucket{UpperBound: math.Inf(1), Count: float64(h.GetSampleCount())})
}

// addBuckets returns a + sign*b, bucket by upper bound. Both must have the
// same bounds (one histogram's series); a bound only one has keeps its
// count from that one.
func addBuckets(a, b []Bucket, sign float64) []Bucket {
	m := make(map[float64]float64, len(a)+len(b))
	for _, x := range a {
		m[x.UpperBound] += x.Count
	}
	for _, x := range b {
		m[x.UpperBound] += sign * x.Count
	}
	out := make([]Bucket, 0, len(m))
	for ub, c := range m {
		out = append(out, Bucket{UpperBound: ub, Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UpperBound < out[j].UpperBound })
	return out
}

// Add returns s + o.
func (s Stats) Add(o Stats) Stats {
	return Stats{Requests: s.Requests + o.Requests, Errors: s.Errors + o.Errors, Buckets: addBuckets(s.Buckets, o.Buckets, 1)}
}

// Since returns what happened between before and s, one edge's counters at
// two times. Counters that went down mean the edge restarted in between:
// then s alone is what it counted since.
func (s Stats) Since(before Stats) Stats {
	if s.Requests < before.Requests || s.Errors < before.Errors || total(s.Buckets) < total(before.Buckets) {
		return s
	}
	return Stats{Requests: s.Requests - before.Requests, Errors: s.Errors - before.Errors, Buckets: addBuckets(s.Buckets, before.Buckets, -1)}
}

func total(b []Bucket) float64 {
	if len(b) == 0 {
		return 0
	}
	return b[len(b)-1].Count
}

// ErrorRatio is Errors / Requests, 0 without requests.
func (s Stats) ErrorRatio() float64 {
	if s.Requests == 0 {
		return 0
	}
	return s.Errors / s.Requests
}

// Quantile estimates the q-quantile of the latency in seconds from the
// buckets, as Prometheus's histogram_quantile does: linear within the
// bucket the rank falls in, the highest finite bound if it falls in +Inf.
// It is NaN without observations.
func (s Stats) Quantile(q float64) float64 {
	n := total(s.Buckets)
	if n <= 0 {
		return math.NaN()
	}
	rank := q * n
	lower, below := 0.0, 0.0
	for _, b := range s.Buckets {
		if b.Count >= rank {
			if math.IsInf(b.UpperBound, 1) {
				return lower
			}
			in := b.Count - below
			if in <= 0 {
				return b.UpperBound
			}
			return lower + (b.UpperBound-lower)*(rank-below)/in
		}
		lower, below = b.UpperBound, b.Count
	}
	return lower
}
