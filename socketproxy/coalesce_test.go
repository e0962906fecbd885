package socketproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestCoalesceConcurrentGETs(t *testing.T) {
	const clients = 50
	var hits atomic.Int32
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/v1.41/services" || r.URL.RawQuery != "filters=%7B%7D" {
			t.Errorf("upstream got %s", r.URL)
		}
		if r.Header.Get("X-Client") != "" {
			t.Error("a client header reached the upstream")
		}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.41")
		io.WriteString(w, `[{"ID":"abc"}]`)
	}))
	defer up.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL)}, nil)
	client := newClient(t)

	type result struct {
		status int
		body   string
		apiVer string
	}
	results := make([]result, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", tp.url+"/v1.41//services/?filters=%7B%7D", nil)
			req.Header.Set("X-Client", "secret-ish")
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			results[i] = result{resp.StatusCode, string(b), resp.Header.Get("Api-Version")}
		}()
	}
	// Hold the one upstream request until every other client has joined it.
	coalesced := tp.m.coalesced.WithLabelValues(string(EndpointServices))
	waitFor(t, "49 clients to join the request in flight", func() bool {
		return testkit.MetricValue(t, coalesced) == clients-1
	})
	close(release)
	wg.Wait()

	if n := hits.Load(); n != 1 {
		t.Fatalf("upstream requests = %d, want 1", n)
	}
	for i, r := range results {
		if r.status != 200 || r.body != `[{"ID":"abc"}]` || r.apiVer != "1.41" {
			t.Errorf("client %d: %+v", i, r)
		}
	}
	if got := testkit.MetricValue(t, tp.m.upstream.WithLabelValues(string(EndpointServices))); got != 1 {
		t.Errorf("upstream metric = %v, want 1", got)
	}

	// Nothing is cached: the next request goes upstream again.
	resp, err := client.Get(tp.url + "/v1.41/services?filters=%7B%7D")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := hits.Load(); n != 2 {
		t.Fatalf("upstream requests after the flight = %d, want 2", n)
	}
}

// TestCoalesceKeys checks that requests differing in method, path or query
// never share an upstream request, and that HEAD gets no body.
func TestCoalesceKeys(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.RequestURI()]++
		mu.Unlock()
		io.WriteString(w, r.URL.RequestURI())
	}))
	defer up.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL)}, nil)
	client := newClient(t)
	for _, tt := range []struct{ method, target, wantBody string }{
		{"GET", "/_ping", "/_ping"},
		{"HEAD", "/_ping", ""},
		{"GET", "/tasks?filters=a", "/tasks?filters=a"},
		{"GET", "/tasks?filters=b", "/tasks?filters=b"},
		{"GET", "/v1.41/tasks", "/v1.41/tasks"},
	} {
		req, _ := http.NewRequest(tt.method, tp.url+tt.target, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != tt.wantBody {
			t.Errorf("%s %s: %d %q, want 200 %q", tt.method, tt.target, resp.StatusCode, b, tt.wantBody)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 5 {
		t.Errorf("upstream saw %v, want 5 distinct requests", seen)
	}
}

func TestUpstreamFailures(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 2048))
	}))
	defer big.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, big.URL), MaxResponseBytes: 1024}, nil)
	if res := rawRequest(t, tp.addr, get("GET", "/services"), false); res.status != http.StatusBadGateway {
		t.Errorf("oversized response: status %d, want 502", res.status)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	addr := upstreamOf(t, down.URL)
	down.Close()
	tp = startProxy(t, Options{Upstream: addr}, nil)
	for _, target := range []string{"/services", "/events"} {
		if res := rawRequest(t, tp.addr, get("GET", target), false); res.status != http.StatusBadGateway {
			t.Errorf("%s with the upstream down: status %d, want 502", target, res.status)
		}
	}
}

func TestNewRejectsBadUpstream(t *testing.T) {
	for _, up := range []string{"", "unix://", "tcp://", "http//x", "ssh://host", "npipe:////./pipe/docker_engine"} {
		if _, err := New(Options{Upstream: up}); err == nil {
			t.Errorf("New(%q) succeeded", up)
		}
	}
}
