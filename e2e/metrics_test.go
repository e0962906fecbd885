package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetrics reads the edge's /metrics in the real swarm (the admin port
// published by deploy/admin-published.yml, as the production stack does not):
// a route's endpoints up, its requests by service, and the time from the
// Swarm's change to the table in force through the control plane.
func TestMetrics(t *testing.T) {
	svc := createEcho(t, "metrics", 2, map[string]string{"swarmgate.hosts": "metrics.e2e.test", "swarmgate.port": "8000"})
	waitStatus(t, "metrics.e2e.test", "/", 200, 60*time.Second)
	const n = 20
	for range n {
		if code, _, err := get("metrics.e2e.test", "/"); err != nil || code != 200 {
			t.Fatalf("GET metrics.e2e.test: %d %v", code, err)
		}
	}
	route := fmt.Sprintf(`route="%s",service="%s"`, svc.name, svc.name)
	waitFor(t, 30*time.Second, "both tasks up in swarmgate_route_endpoints", func() bool {
		v, ok := metricSample(adminText(t, "/metrics"), `swarmgate_route_endpoints{`+route+`,state="up"}`)
		return ok && v == 2
	})
	m := adminText(t, "/metrics")
	if v, _ := metricSample(m, `swarmgate_http_requests_total{code="200",`+route+`}`); v < n {
		t.Errorf("requests of %s with 200: %v, want at least %d", svc.name, v, n)
	}
	if v, _ := metricSample(m, `swarmgate_http_request_duration_seconds_count{`+route+`}`); v < n {
		t.Errorf("latency samples of %s: %v, want at least %d", svc.name, v, n)
	}
	// The service's creation reached the table through the control plane:
	// at least one change measured, and none slower than the suite waited.
	count, _ := metricSample(m, "swarmgate_change_to_table_seconds_count")
	sum, _ := metricSample(m, "swarmgate_change_to_table_seconds_sum")
	if count < 1 || sum/count > 60 {
		t.Errorf("change to table: %v samples, mean %vs", count, sum/count)
	}
	t.Logf("change to table: %v samples, mean %.3fs", count, sum/count)
}

// metricSample returns the value of the series written exactly as series (name
// and labels in the exposition's order) in a /metrics text.
func metricSample(text, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(m[1]), 64)
	return v, err == nil
}
