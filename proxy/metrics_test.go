package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// seriesValue returns the value of the series of family name whose labels are
// exactly labels (counter, gauge, or a histogram's sample count), and whether
// it exists.
func seriesValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func TestRouteMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := New(Options{Logger: zaptest.NewLogger(t), Registerer: reg, DialTimeout: time.Second})
	defer p.Close()
	ok := testkit.Backend(t, "web")
	dead := testkit.UnusedAddr(t) // refuses connections: ejected after the first
	web := testkit.Route("web", []string{"web.test"}, "/", testkit.Addr(ok), dead)
	api := testkit.Route("api", []string{"api.test"}, "/", testkit.UnusedAddr(t))
	api.Name = "v1"
	p.Update(route.Config{Routes: []route.Route{web, api}})

	serve := func(method, host, body string) int {
		t.Helper()
		r := httptest.NewRequest(method, "http://"+host+"/", nil)
		if body != "" {
			r = httptest.NewRequest(method, "http://"+host+"/", strings.NewReader(body))
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w.Code
	}
	for range 4 {
		if code := serve("POST", "web.test", "hello"); code != 200 {
			t.Fatalf("POST web.test: %d", code)
		}
	}
	if code := serve("GET", "api.test", ""); code != 502 && code != 503 {
		t.Fatalf("GET api.test: %d, want 502 or 503", code)
	}
	serve("GET", "nothing.test", "")

	webL := map[string]string{"route": "web", "service": "web"}
	apiL := map[string]string{"route": "api/v1", "service": "api"}
	with := func(l map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range l {
			out[a] = b
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"swarmgate_http_requests_total", with(webL, "code", "200"), 4},
		{"swarmgate_http_requests_total", map[string]string{"route": "", "service": "", "code": "404"}, 1},
		{"swarmgate_http_request_duration_seconds", webL, 4},
		{"swarmgate_http_request_bytes_total", webL, 4 * float64(len("hello"))},
		{"swarmgate_upstream_errors_total", with(apiL, "reason", "connect"), 1},
		{"swarmgate_route_endpoints", with(webL, "state", "up"), 1},
		{"swarmgate_route_endpoints", with(webL, "state", "ejected"), 1},
		{"swarmgate_route_endpoints", with(webL, "state", "down"), 0},
		{"swarmgate_route_endpoints", with(apiL, "state", "up"), 0},
	} {
		if got, ok := seriesValue(t, reg, tt.name, tt.labels); !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	// The dead endpoint was tried (and retried past) by one of the POSTs.
	if got, _ := seriesValue(t, reg, "swarmgate_retries_total", with(webL, "result", "allowed")); got < 1 {
		t.Errorf("retries allowed on web = %v, want at least 1", got)
	}
	if got, _ := seriesValue(t, reg, "swarmgate_http_response_bytes_total", webL); got < 4 {
		t.Errorf("response bytes of web = %v, want the 4 bodies", got)
	}

	// An active health check marks web's live endpoint down.
	p.pool.Endpoint(testkit.Addr(ok)).SetHealthy(false)
	for state, want := range map[string]float64{"up": 0, "ejected": 1, "down": 1} {
		if got, _ := seriesValue(t, reg, "swarmgate_route_endpoints", with(webL, "state", state)); got != want {
			t.Errorf("web's endpoints %s after a failed active check: %v, want %v", state, got, want)
		}
	}

	// The route leaves: its series go with it, the other's stay.
	p.Update(route.Config{Routes: []route.Route{web}})
	for _, name := range []string{"swarmgate_upstream_errors_total", "swarmgate_route_endpoints", "swarmgate_http_request_duration_seconds"} {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if mf.GetName() == name && l.GetName() == "route" && l.GetValue() == "api/v1" {
						t.Errorf("%s still has a series of the removed route: %v", name, m.GetLabel())
					}
				}
			}
		}
	}
	if got, ok := seriesValue(t, reg, "swarmgate_http_requests_total", with(webL, "code", "200")); !ok || got != 4 {
		t.Errorf("web's requests after the swap = %v (present %v), want 4", got, ok)
	}
}

// A request counts on children looked up at table time: no label lookup.
func TestRouteSeriesFromTable(t *testing.T) {
	p := New(Options{Registerer: prometheus.NewRegistry()})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{testkit.Route("web", []string{"web.test"}, "/", "127.0.0.1:1")}})
	tg := p.Table().targets[0]
	s := p.metrics.series(tg)
	if s != p.metrics.series(tg) {
		t.Fatal("series of a target of the table in force looked up again")
	}
	s.answer(200, time.Millisecond, 0, 10) // the first answer creates the route's children, and those of its code
	if n := testing.AllocsPerRun(100, func() {
		p.metrics.series(tg).answer(200, 10*time.Millisecond, 5, 10)
	}); n != 0 {
		t.Errorf("counting a request allocates %v times", n)
	}
}
