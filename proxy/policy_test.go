package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// seenBackend answers with body and records the last request's
// Authorization field and how many body bytes it read.
type seenBackend struct {
	srv  *httptest.Server
	auth atomic.Pointer[string]
	read atomic.Int64
	hits atomic.Int32
}

func newSeenBackend(t *testing.T, body []byte) *seenBackend {
	b := &seenBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		a := r.Header.Get("Authorization")
		b.auth.Store(&a)
		n, _ := io.Copy(io.Discard, r.Body)
		b.read.Store(n)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func policyRoute(b *seenBackend, pol *route.Policy) route.Config {
	r := testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b.srv))
	r.Policy = pol
	return route.Config{Routes: []route.Route{r}}
}

func TestPolicyBasicAuthThroughTheProxy(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	os.WriteFile(filepath.Join(dir, "users"), []byte("alice:"+string(hash)+"\n"), 0o600)
	b := newSeenBackend(t, []byte("hello"))
	core, logs := observer.New(zap.InfoLevel)
	e := startEdgeWith(t, policyRoute(b, &route.Policy{BasicAuth: "users"}), Options{DialTimeout: time.Second, SecretsDir: dir})
	e.p.access = zap.New(core)

	send := func(user, pass string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = "app.example.org"
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := send("", ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="web", charset="UTF-8"` {
		t.Errorf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp := send("alice", "wrong"); resp.StatusCode != 401 {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	if resp := send("alice", "s3cret"); resp.StatusCode != 200 {
		t.Errorf("right password: %d", resp.StatusCode)
	}
	if b.hits.Load() != 1 || *b.auth.Load() != "" {
		t.Errorf("upstream: %d requests, Authorization %q", b.hits.Load(), *b.auth.Load())
	}
	var statuses []int64
	for _, entry := range logs.All() {
		for _, f := range entry.Context {
			if strings.Contains(f.String, "s3cret") || strings.Contains(f.String, "YWxpY2U6czNjcmV0") {
				t.Errorf("access log field %s holds the credentials: %q", f.Key, f.String)
			}
			if f.Key == "status" {
				statuses = append(statuses, f.Integer)
			}
		}
	}
	if len(statuses) != 3 || statuses[0] != 401 || statuses[1] != 401 || statuses[2] != 200 {
		t.Errorf("access log statuses %v, want [401 401 200]", statuses)
	}
}

func TestPolicyUnavailableFailsClosed(t *testing.T) {
	b := newSeenBackend(t, []byte("secret stuff"))
	e := startEdgeWith(t, policyRoute(b, &route.Policy{BasicAuth: "missing"}), Options{DialTimeout: time.Second, SecretsDir: t.TempDir()})
	if resp, _ := e.do(t, http.MethodGet, "app.example.org", "/", nil); resp.StatusCode != 503 || b.hits.Load() != 0 {
		t.Errorf("a route whose htpasswd file is missing: %d, upstream hits %d", resp.StatusCode, b.hits.Load())
	}
	if rej := e.p.Table().Rejected(); len(rej) != 1 || !strings.Contains(rej[0], "route web: policy: auth.basic") {
		t.Errorf("Rejected() = %q", rej)
	}
}

func TestPolicyBodyLimitThroughTheProxy(t *testing.T) {
	b := newSeenBackend(t, []byte("ok"))
	e := startEdge(t, policyRoute(b, &route.Policy{BodyMax: 100 << 10}))
	post := func(body io.Reader, n int64) int {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/", body)
		req.Host, req.ContentLength = "app.example.org", n
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(bytes.NewReader(make([]byte, 100<<10)), 100<<10); code != 200 || b.read.Load() != 100<<10 {
		t.Errorf("at the limit: %d, upstream read %d", code, b.read.Load())
	}
	hits := b.hits.Load()
	if code := post(bytes.NewReader(make([]byte, 100<<10+1)), 100<<10+1); code != 413 || b.hits.Load() != hits {
		t.Errorf("Content-Length over the limit: %d, upstream reached: %v", code, b.hits.Load() != hits)
	}
	b.read.Store(0)
	// Chunked, 1 MiB: more than the request buffer, so it streams; the
	// upstream sees at most the limit.
	if code := post(io.MultiReader(bytes.NewReader(make([]byte, 1<<20))), -1); code != 413 || b.read.Load() > 100<<10 {
		t.Errorf("chunked over the limit: %d, upstream read %d", code, b.read.Load())
	}
}

func TestPolicyRateLimitThroughTheProxy(t *testing.T) {
	clk := testkit.NewClock()
	b := newSeenBackend(t, []byte("ok"))
	cfg := policyRoute(b, &route.Policy{RateLimit: route.Rate{N: 1, Per: time.Minute, Burst: 2}})
	e := startEdgeWith(t, cfg, Options{DialTimeout: time.Second, Now: clk.Now})
	codes := func() (out []int) {
		for range 3 {
			resp, _ := e.do(t, http.MethodGet, "app.example.org", "/", nil)
			out = append(out, resp.StatusCode)
		}
		return out
	}
	if got := codes(); got[0] != 200 || got[1] != 200 || got[2] != 429 {
		t.Errorf("burst of 2: %v", got)
	}
	// A new table (any change anywhere) keeps the route's state.
	e.p.Update(cfg)
	if resp, _ := e.do(t, http.MethodGet, "app.example.org", "/", nil); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("after a rebuild: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clk.Advance(time.Minute)
	if resp, _ := e.do(t, http.MethodGet, "app.example.org", "/", nil); resp.StatusCode != 200 {
		t.Errorf("a minute later: %d", resp.StatusCode)
	}
}

func TestPolicyCompressThroughTheProxy(t *testing.T) {
	body := bytes.Repeat([]byte("compressible text "), 1000)
	b := newSeenBackend(t, body)
	e := startEdge(t, policyRoute(b, &route.Policy{Compress: []string{"gzip"}, ResponseHeaders: []route.Header{{Name: "X-Edge", Value: "1"}}}))
	req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
	req.Host = "app.example.org"
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := e.client.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("X-Edge") != "1" {
		t.Fatalf("fields %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, body) {
		t.Errorf("decoded %d bytes, want %d", len(got), len(body))
	}
}

// TestPolicyReadmeExample serves the routes file of policy/README.md, its
// endpoint replaced by a live backend, and checks what the README says it
// does.
func TestPolicyReadmeExample(t *testing.T) {
	doc, err := os.ReadFile("../policy/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```yaml\nservices:")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("no routes file example in policy/README.md")
	}
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Server", "upstream/1.0")
		w.Header().Set("Content-Type", "text/html")
		w.Write(bytes.Repeat([]byte("<p>admin</p>"), 400))
	}))
	defer backend.Close()
	cfg, err := discovery.ParseRoutesFile([]byte("services:" + strings.ReplaceAll(block, "127.0.0.1:9000", testkit.Addr(backend))))
	if err != nil || len(cfg.Errors) > 0 || len(cfg.Routes) != 1 {
		t.Fatalf("the example: %v %v %d routes", err, cfg.Errors, len(cfg.Routes))
	}
	secrets := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	os.WriteFile(filepath.Join(secrets, "admin.htpasswd"), []byte("alice:"+string(hash)+"\n"), 0o600)
	e := startEdgeWith(t, cfg, Options{DialTimeout: time.Second, SecretsDir: secrets})

	send := func(auth bool, body io.Reader) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/", body)
		req.Host = "admin.example.org"
		req.Header.Set("Accept-Encoding", "gzip")
		if auth {
			req.SetBasicAuth("alice", "s3cret")
		}
		resp, err := e.client.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := send(false, nil); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="Shop admin"`) {
		t.Errorf("without credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp := send(true, strings.NewReader("form=1"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" ||
		resp.Header.Get("Server") != "" {
		t.Errorf("with credentials: %d, fields %v", resp.StatusCode, resp.Header)
	}
	if seen.Get("X-Tenant") != "shop" || seen.Get("Authorization") != "" {
		t.Errorf("the upstream saw %v", seen)
	}
	// A body over 1m: the edge answers 413 from Content-Length and closes
	// the connection. The client waits for that answer before it sends the
	// body (Expect: 100-continue), or its write could meet the close.
	big, _ := http.NewRequest(http.MethodPost, e.url+"/", bytes.NewReader(make([]byte, 1<<20+1)))
	big.Host = "admin.example.org"
	big.Header.Set("Expect", "100-continue")
	big.SetBasicAuth("alice", "s3cret")
	waits := &http.Transport{ExpectContinueTimeout: time.Minute}
	defer waits.CloseIdleConnections()
	if resp, err := waits.RoundTrip(big); err != nil || resp.StatusCode != 413 {
		t.Errorf("a body over 1m: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	limited := 0
	for range 20 {
		if send(true, nil).StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("20 requests at once with ratelimit 5/s, burst 10: none was limited")
	}
}

// discardWriter is a ResponseWriter that keeps nothing, for benchmarks.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchServe measures one request through the proxy's handler to a real
// backend answering 1 KiB, with the route's policy pol.
func benchServe(b *testing.B, pol *route.Policy, dir string, header http.Header) {
	body := bytes.Repeat([]byte("a 1 KiB body of text for the benchmark. "), 26)[:1024]
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	defer backend.Close()
	r := testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(backend))
	r.Policy = pol
	p := New(Options{SecretsDir: dir})
	defer p.Close()
	p.Update(route.Config{Routes: []route.Route{r}})
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodGet, "http://app.example.org/", nil)
		for k, v := range header {
			req.Header[k] = v
		}
		clear(w.h)
		p.ServeHTTP(w, req)
	}
}

// BenchmarkServeBareRoute is the cost of a route without policies: the
// same before and after routes had policies.
func BenchmarkServeBareRoute(b *testing.B) { benchServe(b, nil, "", nil) }

// BenchmarkServePolicyRoute is a route with basic auth, a rate limit and
// compression on a 1 KiB body.
func BenchmarkServePolicyRoute(b *testing.B) {
	dir := b.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.DefaultCost)
	os.WriteFile(filepath.Join(dir, "users"), []byte("alice:"+string(hash)+"\n"), 0o600)
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("alice", "s3cret")
	req.Header.Set("Accept-Encoding", "gzip, br")
	pol := &route.Policy{BasicAuth: "users", RateLimit: route.Rate{N: 1_000_000, Per: time.Second, Burst: 1_000_000},
		Compress: []string{"zstd", "br", "gzip"}}
	benchServe(b, pol, dir, req.Header)
}

func TestPolicyForwardAuthThroughTheProxy(t *testing.T) {
	var seen atomic.Pointer[http.Header]
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		seen.Store(&h)
		io.WriteString(w, "orders")
	}))
	defer backend.Close()
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("session"); err == nil && c.Value == "alice" {
			w.Header().Set("Remote-User", "alice")
			return
		}
		w.Header().Set("Location", "https://login.example.org/?rd="+r.Header.Get("X-Forwarded-Uri"))
		w.Header().Set("Set-Cookie", "flow=1")
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, "log in")
	}))
	defer auth.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	shop := testkit.Route("shop", []string{"shop.example.org"}, "/", testkit.Addr(backend))
	shop.Policy = &route.Policy{ForwardAuth: auth.URL + "/verify", ForwardAuthHeaders: []string{"Remote-User"}}
	closed := testkit.Route("closed", []string{"closed.example.org"}, "/", testkit.Addr(backend))
	closed.Policy = &route.Policy{ForwardAuth: downURL + "/verify"}
	e := startEdge(t, route.Config{Routes: []route.Route{shop, closed}})
	// Redirects are answers to pass on, not to follow.
	e.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	send := func(host, cookie string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/orders?page=2", nil)
		req.Host = host
		req.Header.Set("Remote-User", "mallory")
		if cookie != "" {
			req.Header.Set("Cookie", "session="+cookie)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := send("shop.example.org", "alice"); resp.StatusCode != 200 || body != "orders" || (*seen.Load()).Get("Remote-User") != "alice" {
		t.Errorf("allowed: %d %q, upstream Remote-User %q", resp.StatusCode, body, (*seen.Load()).Get("Remote-User"))
	}
	seen.Store(nil)
	resp, body := send("shop.example.org", "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://login.example.org/?rd=/orders?page=2" ||
		resp.Header.Get("Set-Cookie") != "flow=1" || body != "log in" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("refused: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	// The auth service judges the path that is forwarded.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/public/../orders", nil)
	req.Host = "shop.example.org"
	if resp, err := e.client.Do(req); err != nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://login.example.org/?rd=/orders" {
		t.Errorf("a path with ..: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, _ := send("closed.example.org", "alice"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("auth service down: %d, want 503", resp.StatusCode)
	}
	if seen.Load() != nil {
		t.Errorf("a refused request reached the upstream: %v", *seen.Load())
	}
}
