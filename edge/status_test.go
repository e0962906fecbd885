package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/tlsstore"
)

// Hostile label values: the page must show them as text.
const (
	evilService = `evil<script>alert("service")</script>`
	evilValue   = `"><img src=x onerror=alert(1)>`
)

// statusScene is an edge with the routes of the status page's screenshot:
// a canary pair (web 90, web-canary 10 on app.example.org), a TLS route
// with a certificate from the directory (shop), an SNI passthrough route,
// a label error with hostile values, and one endpoint ejected by passive
// health. Every endpoint is on loopback: backends that answer, and one
// address where nothing listens. Its admin handler is served on a
// loopback listener.
type statusScene struct {
	e     *Edge
	pool  *balancer.Pool
	admin *Admin
	url   string // the admin listener
	proxy string // the HTTP listener
	// web, canary and shop are the backends' addresses; ejected is the
	// canary's endpoint that passive health ejected, and db the L4
	// route's endpoint (nothing dials it).
	web, canary []string
	shop        string
	ejected, db string
}

// fakeSource is a route source that reports itself, like the control
// plane client.
type fakeSource struct{ status route.SourceStatus }

func (f *fakeSource) Name() string                                  { return "control:manager-1:7070" }
func (f *fakeSource) Run(context.Context, func(route.Config)) error { return nil }
func (f *fakeSource) Status() route.SourceStatus                    { return f.status }

func newStatusScene(t *testing.T) *statusScene {
	t.Helper()
	log, reg := zaptest.NewLogger(t), prometheus.NewRegistry()
	// A long ejection, so that the ejected endpoint stays so while a
	// browser looks.
	pool := balancer.NewPool(balancer.PoolOptions{BaseEjection: time.Minute})
	p := proxy.New(proxy.Options{Logger: log, Registerer: reg, DialTimeout: time.Second, Pool: pool})
	e := New(Core{Proxy: p, Pool: pool, Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.NewServer("http", proxy.ServerOptions{})
	go srv.Serve(ln)

	certs := t.TempDir()
	ca := testkit.NewCA(t, "swarmgate test CA")
	ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"shop.example.org", "www.shop.example.org"},
		NotAfter: time.Now().Add(60 * 24 * time.Hour)}).WriteFiles(t, certs, "shop")
	store, err := tlsstore.New(tlsstore.Options{Dir: certs, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{status: route.SourceStatus{Connected: true, Synced: true, Detail: struct {
		Server    string    `json:"server"`
		Version   string    `json:"version"`
		LastFrame time.Time `json:"last_frame"`
	}{"manager-1:7070", "42", time.Now()}}}
	a := NewAdmin(e, reg, AdminOptions{})
	a.ReportSources([]route.Source{src})
	a.ReportCertificates(store)
	a.SetReady(true)
	admin := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		admin.Close()
		e.Close()
		srv.Shutdown(ctx)
		p.Close()
	})

	backend := func(name string) string { return testkit.Addr(testkit.Backend(t, name)) }
	s := &statusScene{e: e, pool: pool, admin: a, url: admin.URL, proxy: "http://" + ln.Addr().String(),
		web: []string{backend("web-1"), backend("web-2")}, canary: []string{backend("canary-1")},
		shop: backend("shop-1"), ejected: testkit.UnusedAddr(t), db: testkit.UnusedAddr(t)}
	s.apply(s.config())
	// One failed connection ejects an endpoint at once.
	pool.Endpoint(s.ejected).Acquire()(0, balancer.ConnectFailure)
	// A little traffic, for latencies.
	// shop redirects to HTTPS: the redirect is not followed.
	client := &http.Client{Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	for range 10 {
		testkit.Request(t, client, "GET", s.proxy+"/", "app.example.org", nil).Body.Close()
	}
	return s
}

// config is the scene's configuration.
func (s *statusScene) config() route.Config {
	web := testkit.Route("web", []string{"app.example.org"}, "/", s.web...)
	web.Weight, web.HealthPath, web.HealthInterval = 90, "/healthz", 5*time.Second
	web.CreatedAt = time.Unix(1, 0)
	canary := testkit.Route("web-canary", []string{"app.example.org"}, "/", append(s.canary, s.ejected)...)
	canary.Weight, canary.CreatedAt = 10, time.Unix(2, 0)
	shop := testkit.Route("shop", []string{"shop.example.org"}, "/", s.shop)
	shop.TLS, shop.TLSRedirect, shop.CreatedAt = "shop", true, time.Unix(3, 0)
	db := route.Route{Service: "db", Port: 5432, Backend: route.BackendTask, SNI: []string{"db.example.org"},
		TLS: route.TLSPassthrough, Weight: route.DefaultWeight, Endpoints: []string{s.db}, CreatedAt: time.Unix(4, 0)}
	return route.Config{
		Routes: []route.Route{web, canary, shop, db},
		Errors: []*route.LabelError{{Service: evilService, Label: "swarmgate.port", Value: evilValue,
			Reason: "not a port number"}},
		Changed: time.Now().Add(-40 * time.Millisecond),
	}
}

// apply puts cfg in force through the reporting source, as Run does.
func (s *statusScene) apply(cfg route.Config) { s.admin.track(0, s.e.Apply)(cfg) }

func (s *statusScene) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestStatusPage: the page shows every part of the state, escaped, with
// headers that keep anything else from running in it.
func TestStatusPage(t *testing.T) {
	s := newStatusScene(t)
	resp, page := s.get(t, "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	for _, want := range []string{
		"app.example.org", "weighted group of 2", "weight 90 · 90%", "weight 10 · 10%", // the canary pair
		"active health check /healthz every 5s", "passive health only",
		"TLS certificate shop, HTTP redirected", // the TLS route
		s.web[0], s.ejected, ">ejected</span> until ",
		"1 ejection in a row",
		"TLS SNI db.example.org (passthrough)",                                      // L4
		"shop.example.org, www.shop.example.org", "swarmgate test CA", "in 59 days", // certificate
		"control:manager-1:7070", ">yes</span>", "server: manager-1:7070", "version: 42", // source
		"swarmgate.port", "not a port number", // label error
		`data-src="status/body"`, `src="status/assets/status.js"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Hostile values arrive as text.
	for _, raw := range []string{evilService, evilValue, "<img", "<script>alert"} {
		if strings.Contains(page, raw) {
			t.Errorf("the page contains %q unescaped", raw)
		}
	}
	if !strings.Contains(page, html.EscapeString(`evil<script>alert(`)) {
		t.Errorf("the hostile service name is not shown escaped")
	}
	if t.Failed() {
		t.Log(page)
	}

	// The script's refresh gets the body alone, from the same state.
	_, body := s.get(t, "/status/body")
	if strings.Contains(body, "<html") || !strings.Contains(body, "weight 90 · 90%") {
		t.Fatalf("/status/body is not the page's body:\n%s", body)
	}
	for path, typ := range map[string]string{"/status/assets/status.js": "javascript", "/status/assets/status.css": "text/css"} {
		resp, _ := s.get(t, path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), typ) {
			t.Errorf("%s: %s %q", path, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
}

// TestStatusFilter: the filter narrows every list to what matches, and
// the page says what it leaves out; the filter is shown escaped.
func TestStatusFilter(t *testing.T) {
	s := newStatusScene(t)
	_, body := s.get(t, "/status/body?q=SHOP")
	if !strings.Contains(body, `data-route="shop"`) || strings.Contains(body, `data-route="web-canary"`) {
		t.Fatalf("q=SHOP: want shop and not web-canary:\n%s", body)
	}
	for _, want := range []string{"Showing 1 of 2 host and path groups: 1 match “SHOP”.", "No L4 route matches the filter.",
		"No label error matches the filter."} {
		if !strings.Contains(body, want) {
			t.Errorf("q=SHOP: the body lacks %q", want)
		}
	}
	// An endpoint address finds its route.
	if _, body := s.get(t, "/status/body?q="+s.ejected); !strings.Contains(body, `data-route="web-canary"`) || strings.Contains(body, `data-route="shop"`) {
		t.Errorf("q=%s: want web-canary alone", s.ejected)
	}
	_, page := s.get(t, "/?q=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
	if strings.Contains(page, "<script>alert(1)") || !strings.Contains(page, `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Errorf("a hostile filter is not escaped:\n%s", page)
	}
}

// TestStatusLimit: a large table lists statusLimit groups and says how
// many there are.
func TestStatusLimit(t *testing.T) {
	te := startEdge(t, route.Config{}, time.Second)
	var cfg route.Config
	for i := range statusLimit + 50 {
		cfg.Routes = append(cfg.Routes, testkit.Route(fmt.Sprintf("svc-%03d", i), []string{fmt.Sprintf("h%03d.example.org", i)}, "/"))
	}
	te.e.Apply(cfg)
	h := NewAdmin(te.e, prometheus.NewRegistry(), AdminOptions{}).Handler()
	get := func(path string) string {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "127.0.0.1:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	body := get("/status/body")
	if n := strings.Count(body, `<article class="route"`); n != statusLimit {
		t.Errorf("%d routes listed, want %d", n, statusLimit)
	}
	if want := fmt.Sprintf("Showing %d of %d host and path groups. Type in the filter", statusLimit, statusLimit+50); !strings.Contains(body, want) {
		t.Errorf("the body lacks %q", want)
	}
	if want := fmt.Sprintf("HTTP routes <b>%d</b>", statusLimit+50); !strings.Contains(body, want) {
		t.Errorf("the summary lacks %q", want)
	}
	body = get("/status/body?q=h24")
	if n := strings.Count(body, `<article class="route"`); n != 10 || !strings.Contains(body, "10 match “h24”.") {
		t.Errorf("q=h24: %d routes listed, want 10 (h240 to h249)", n)
	}
}

// TestStatusAPI: /api/status and /api/sources carry what the page shows.
func TestStatusAPI(t *testing.T) {
	s := newStatusScene(t)
	_, raw := s.get(t, "/api/status")
	var v StatusView
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Table.Routes) != 3 || len(v.Table.L4) != 1 || len(v.Certificates) != 1 || len(v.Sources) != 1 {
		t.Fatalf("routes %d, l4 %d, certificates %d, sources %d", len(v.Table.Routes), len(v.Table.L4), len(v.Certificates), len(v.Sources))
	}
	if c := v.Certificates[0]; c.Name != "shop" || c.Issuer != "swarmgate test CA" || len(c.Routes) != 1 || c.Routes[0] != "shop" {
		t.Fatalf("certificate %+v", c)
	}
	src := v.Sources[0]
	if src.Updated.IsZero() || src.Changed.IsZero() || src.LagSeconds < 0.04 || src.LagSeconds > 5 {
		t.Fatalf("source %+v: want updated, changed, and a lag of about 40ms", src)
	}
	found := false
	for _, r := range v.Table.Routes {
		for _, e := range r.Endpoints {
			if e.Addr != s.ejected {
				continue
			}
			found = true
			if EndpointState(e) != "ejected" || !e.EjectedUntil.After(v.Now) || e.Ejections != 1 || e.Available {
				t.Errorf("the ejected endpoint: %+v", e)
			}
		}
		if r.Route == "web" && (r.Health == nil || r.Health.Path != "/healthz") {
			t.Errorf("web's health check: %+v", r.Health)
		}
	}
	if !found {
		t.Errorf("no endpoint %s", s.ejected)
	}
}

// TestStatusGuard: the page, its parts and its assets answer whom
// /api/routes answers, and no one else.
func TestStatusGuard(t *testing.T) {
	te := startEdge(t, route.Config{}, time.Second)
	a := NewAdmin(te.e, prometheus.NewRegistry(), AdminOptions{})
	h := a.Handler()
	for _, path := range []string{"/", "/status/body", "/status/assets/status.js", "/api/status", "/api/sources"} {
		for peer, want := range map[string]int{"203.0.113.5:4000": 403, "127.0.0.1:4000": 200, "10.0.1.7:4000": 200} {
			req := httptest.NewRequest("GET", path, nil)
			req.RemoteAddr = peer
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != want {
				t.Errorf("%s from %s: %d, want %d", path, peer, rec.Code, want)
			}
		}
	}
	req := httptest.NewRequest("GET", "/nothing", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Errorf("/nothing: %d, want 404", rec.Code)
	}
}

// TestStatusToken: with a token, a browser gets a Basic challenge and may
// send the token as the password.
func TestStatusToken(t *testing.T) {
	te := startEdge(t, route.Config{}, time.Second)
	h := NewAdmin(te.e, prometheus.NewRegistry(), AdminOptions{Token: "s3cret"}).Handler()
	get := func(set func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = "127.0.0.1:4000"
		set(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get(func(*http.Request) {})
	if rec.Code != 401 || !slices.ContainsFunc(rec.Header().Values("WWW-Authenticate"), func(v string) bool {
		return strings.HasPrefix(v, "Basic ")
	}) {
		t.Fatalf("no token: %d, challenges %q", rec.Code, rec.Header().Values("WWW-Authenticate"))
	}
	for name, tt := range map[string]struct {
		set  func(*http.Request)
		want int
	}{
		"basic, token as password": {func(r *http.Request) { r.SetBasicAuth("admin", "s3cret") }, 200},
		"basic, wrong password":    {func(r *http.Request) { r.SetBasicAuth("admin", "nope") }, 401},
		"basic, token as user":     {func(r *http.Request) { r.SetBasicAuth("s3cret", "") }, 401},
		"bearer":                   {func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, 200},
	} {
		if rec := get(tt.set); rec.Code != tt.want || strings.Contains(rec.Body.String(), "s3cret") {
			t.Errorf("%s: %d, want %d", name, rec.Code, tt.want)
		}
	}
}

// TestEndpointState: how the page and `swarmgate routes` name an
// endpoint's health.
func TestEndpointState(t *testing.T) {
	until := time.Now().Add(time.Minute)
	for _, tt := range []struct {
		e    proxy.EndpointView
		want string
	}{
		{proxy.EndpointView{Available: true}, "up"},
		{proxy.EndpointView{Down: true}, "down"},
		{proxy.EndpointView{Down: true, EjectedUntil: until}, "down"},
		{proxy.EndpointView{EjectedUntil: until, Ejections: 1}, "ejected"},
		{proxy.EndpointView{Probing: true, Available: true}, "probing"},
		{proxy.EndpointView{Probing: true, InFlight: 1}, "probing"}, // its one request is out
	} {
		if got := EndpointState(tt.e); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
}

// TestRoughly: how the page says durations.
func TestRoughly(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                "0s",
		1500 * time.Microsecond:     "2ms",
		4200 * time.Millisecond:     "4s",
		90 * time.Minute:            "1h30m",
		3 * time.Minute:             "3m",
		59 * 24 * time.Hour:         "59 days",
		59*24*time.Hour + time.Hour: "59 days",
	} {
		if got := roughly(d); got != want {
			t.Errorf("roughly(%v) = %q, want %q", d, got, want)
		}
	}
	now := time.Now()
	for d, want := range map[time.Duration]string{300 * time.Millisecond: "just now", 4 * time.Second: "4s ago"} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v before) = %q, want %q", d, got, want)
		}
	}
}
