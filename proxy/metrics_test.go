package proxy

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
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

// BenchmarkScrape gathers the proxy's metrics with a table of n routes of
// two endpoints each and no request answered yet: the 3 n endpoint series
// are the whole scrape. "gather" is the registry's Gather, "http" the
// /metrics handler an edge serves (text, gzip), as a Prometheus scrape gets it.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		cfg := route.Config{}
		for i := range n {
			cfg.Routes = append(cfg.Routes, route.Route{
				Service: fmt.Sprintf("svc%05d", i), Hosts: []string{fmt.Sprintf("svc%05d.bench.test", i)},
				Path: "/", Port: 8000, Weight: route.DefaultWeight, Balancer: route.DefaultBalancer,
				Backend: route.BackendTask, TLS: route.TLSOff, BackendTLS: route.BackendTLSOff,
				Timeout: route.DefaultTimeout, CreatedAt: time.Unix(int64(i), 0),
				Endpoints: []string{fmt.Sprintf("10.%d.%d.1:8000", i/250, i%250), fmt.Sprintf("10.%d.%d.2:8000", i/250, i%250)},
			})
		}
		reg := prometheus.NewRegistry()
		p := New(Options{Logger: zap.NewNop(), Registerer: reg})
		p.Update(cfg)
		b.Run(fmt.Sprintf("gather/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mfs, err := reg.Gather()
				if err != nil || len(mfs) == 0 {
					b.Fatal(len(mfs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("http/%d", n), func(b *testing.B) {
			h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", "/metrics", nil)
				r.Header.Set("Accept-Encoding", "gzip")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
		p.Close()
	}
}

// A scrape of routes whose endpoint counts did not change builds nothing:
// the collector sends the series of the scrape before.
func TestEndpointSeriesReused(t *testing.T) {
	p := New(Options{Registerer: prometheus.NewRegistry()})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{
		testkit.Route("web", []string{"web.test"}, "/", "127.0.0.1:1", "127.0.0.1:2"),
		testkit.Route("api", []string{"api.test"}, "/", "127.0.0.1:3"),
	}})
	c := &endpointCollector{m: p.metrics, now: time.Now}
	ch := make(chan prometheus.Metric, 6)
	collect := func() []prometheus.Metric {
		c.Collect(ch)
		out := make([]prometheus.Metric, 0, 6)
		for len(ch) > 0 {
			out = append(out, <-ch)
		}
		return out
	}
	first := collect()
	if len(first) != 6 {
		t.Fatalf("%d series for 2 routes, want 6", len(first))
	}
	if n := testing.AllocsPerRun(100, func() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}); n != 0 {
		t.Errorf("a scrape of unchanged routes allocates %v times in the collector", n)
	}
	// web's endpoint on :1 goes down: web's series are new, api's the same.
	p.pool.Endpoint("127.0.0.1:1").SetHealthy(false)
	second := collect()
	for i := range first {
		var m dto.Metric
		if err := second[i].Write(&m); err != nil {
			t.Fatal(err)
		}
		route := m.GetLabel()[0].GetValue()
		if same := first[i] == second[i]; same != (route == "api") {
			t.Errorf("series %d of route %s reused: %v", i, route, same)
		}
	}
}

// Scrapes in both formats run while tables are swapped and endpoints change
// state (go test -race), and each sees three series per route.
func TestEndpointScrapesConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := New(Options{Registerer: reg})
	defer p.Close()
	cfg := func(v int) route.Config {
		var c route.Config
		for i := range 20 {
			c.Routes = append(c.Routes, testkit.Route(fmt.Sprintf("svc%d", i), []string{fmt.Sprintf("svc%d.test", i)}, "/",
				fmt.Sprintf("127.0.0.1:%d", 1+i), fmt.Sprintf("127.0.0.1:%d", 100+i+v%2)))
		}
		return c
	}
	p.Update(cfg(0))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, accept := range []string{"text/plain", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"} {
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					r := httptest.NewRequest("GET", "/metrics", nil)
					r.Header.Set("Accept", accept)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						t.Errorf("scrape (%s): %d %s", accept, w.Code, w.Body)
						return
					}
				}
			})
		}
	}
	for v := range 200 {
		p.Update(cfg(v))
		p.pool.Endpoint(fmt.Sprintf("127.0.0.1:%d", 1+v%20)).SetHealthy(v%3 != 0)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "swarmgate_route_endpoints" && len(mf.GetMetric()) != 60 {
				t.Fatalf("table %d: %d endpoint series, want 60", v, len(mf.GetMetric()))
			}
		}
	}
	close(done)
	wg.Wait()
}
