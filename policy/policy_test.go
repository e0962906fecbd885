package policy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream records what reached it and answers with its handler.
type upstream struct {
	hits atomic.Int32
	last atomic.Pointer[http.Request]
	body atomic.Int64 // bytes of the last request body read
}

func (u *upstream) handler(answer http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.last.Store(r.Clone(r.Context()))
		if answer != nil {
			answer(w, r)
			return
		}
		io.WriteString(w, "ok")
	})
}

// serve starts a real listener serving the route policy p in front of h.
// remote, when set, replaces the client address as a PROXY protocol
// listener would.
func serve(t *testing.T, p *route.Policy, o Options, h http.Handler, remote string) *httptest.Server {
	t.Helper()
	handler, err := Build("web", p, h, o)
	if err != nil {
		t.Fatal(err)
	}
	if remote != "" {
		inner := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.RemoteAddr = remote
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// roundTrip sends req as it is (no Accept-Encoding added); the caller
// closes the body.
func roundTrip(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp := roundTrip(t, req)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func TestBuildNilIsNext(t *testing.T) {
	next := http.NotFoundHandler()
	h, err := Build("web", nil, next, Options{})
	if err != nil || h == nil {
		t.Fatal(h, err)
	}
	if _, ok := h.(http.HandlerFunc); !ok {
		t.Fatalf("Build(nil) wrapped next: %T", h)
	}
}

func TestAccessList(t *testing.T) {
	pf := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	cases := []struct {
		name        string
		allow, deny []netip.Prefix
		remote      string // "" is the real peer, 127.0.0.1
		want        int
	}{
		{"allowed peer", pf("127.0.0.0/8"), nil, "", 200},
		{"peer not allowed", pf("10.0.0.0/8"), nil, "", 403},
		{"denied peer", nil, pf("127.0.0.1/32"), "", 403},
		{"deny wins over allow", pf("127.0.0.0/8"), pf("127.0.0.1/32"), "", 403},
		{"IPv6 client allowed", pf("2001:db8::/32"), nil, "[2001:db8::7]:4000", 200},
		{"IPv6 client not allowed", pf("2001:db8::/32"), nil, "[2001:db9::7]:4000", 403},
		{"IPv6 client denied", nil, pf("2001:db8:1::/48"), "[2001:db8:1::5]:4000", 403},
		{"PROXY protocol client allowed", pf("203.0.113.0/24"), nil, "203.0.113.9:5000", 200},
		{"PROXY protocol client denied", pf("0.0.0.0/0"), pf("198.51.100.0/24"), "198.51.100.1:5000", 403},
		{"v4-mapped client matches its IPv4 prefix", pf("192.0.2.0/24"), nil, "[::ffff:192.0.2.1]:80", 200},
		{"client without an address with an allow list", pf("0.0.0.0/0"), nil, "@", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var up upstream
			srv := serve(t, &route.Policy{Allow: c.allow, Deny: c.deny}, Options{}, up.handler(nil), c.remote)
			resp, _ := get(t, srv.URL)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == 403 && up.hits.Load() != 0 {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}
}

func TestAccessListIPv6Listener(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	var up upstream
	h, _ := Build("web", &route.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("::1/128")}}, up.handler(nil), Options{})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	if resp, _ := get(t, srv.URL); resp.StatusCode != 200 {
		t.Fatalf("::1 with allow ::1/128: %d", resp.StatusCode)
	}
}

func writeHtpasswd(t *testing.T, lines ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func bcryptLine(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h)
}

func TestBasicAuth(t *testing.T) {
	dir := writeHtpasswd(t, bcryptLine(t, "alice", "s3cret"), bcryptLine(t, "bob", "hunter2"))
	var up upstream
	var reasons []string
	reply := func(w http.ResponseWriter, r *http.Request, code int, reason string) {
		reasons = append(reasons, reason)
		plainReply(w, r, code, reason)
	}
	srv := serve(t, &route.Policy{BasicAuth: "users", BasicRealm: "Shop admin"},
		Options{SecretsDir: dir, Reply: reply}, up.handler(nil), "")
	try := func(user, pass string, set bool) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if set {
			req.SetBasicAuth(user, pass)
		}
		resp, _ := do(t, req)
		return resp
	}
	for _, c := range []struct {
		name       string
		user, pass string
		set        bool
		want       int
	}{
		{"missing", "", "", false, 401},
		{"wrong password", "alice", "guess", true, 401},
		{"unknown user", "mallory", "s3cret", true, 401},
		{"other user's password", "bob", "s3cret", true, 401},
		{"right", "alice", "s3cret", true, 200},
		{"right again (remembered)", "alice", "s3cret", true, 200},
		{"right, other user", "bob", "hunter2", true, 200},
		{"wrong after right", "alice", "s3cre", true, 401},
	} {
		resp := try(c.user, c.pass, c.set)
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want == 401 {
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="Shop admin", charset="UTF-8"` {
				t.Errorf("%s: WWW-Authenticate %q", c.name, got)
			}
		}
	}
	if n := up.hits.Load(); n != 3 {
		t.Errorf("upstream saw %d requests, want the 3 with right credentials", n)
	}
	if a := up.last.Load().Header.Get("Authorization"); a != "" {
		t.Errorf("the upstream got Authorization %q", a)
	}
	for _, r := range reasons {
		if strings.Contains(r, "s3cret") || strings.Contains(r, "guess") {
			t.Errorf("a reason for the log holds a password: %q", r)
		}
	}
}

func TestBasicAuthFileErrors(t *testing.T) {
	plain := writeHtpasswd(t, bcryptLine(t, "alice", "x"), "bob:hunter2")
	if _, err := Build("web", &route.Policy{BasicAuth: "users"}, http.NotFoundHandler(), Options{SecretsDir: plain}); err == nil ||
		!strings.Contains(err.Error(), `auth.basic file users: line 2: user "bob": a crypt(3) DES or plain-text password is refused`) ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("plain-text password: %v", err)
	}
	if _, err := Build("web", &route.Policy{BasicAuth: "absent"}, http.NotFoundHandler(), Options{SecretsDir: t.TempDir()}); err == nil ||
		!errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	clk := testkit.NewClock()
	var up upstream
	srv := serve(t, &route.Policy{RateLimit: route.Rate{N: 2, Per: time.Second, Burst: 3}},
		Options{Now: clk.Now}, up.handler(nil), "")
	status := func() (int, string) {
		resp, _ := get(t, srv.URL)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 3 {
		if code, _ := status(); code != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, code)
		}
	}
	if code, retry := status(); code != 429 || retry != "1" {
		t.Fatalf("over the burst: %d, Retry-After %q; want 429, 1", code, retry)
	}
	clk.Advance(500 * time.Millisecond) // one request's worth at 2/s
	if code, _ := status(); code != 200 {
		t.Fatalf("after 500ms: %d", code)
	}
	if code, _ := status(); code != 429 {
		t.Fatalf("the refilled request is spent: %d", code)
	}
	clk.Advance(time.Hour)
	for i := range 3 {
		if code, _ := status(); code != 200 {
			t.Fatalf("after an idle hour, request %d: %d", i+1, code)
		}
	}
	if n := up.hits.Load(); n != 7 {
		t.Errorf("upstream saw %d, want 7", n)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	clk := testkit.NewClock()
	l := newLimiter(route.Rate{N: 1, Per: time.Minute, Burst: 1}, clk.Now, 100)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if ok, _ := l.allow(a); !ok {
		t.Fatal("a's first")
	}
	if ok, retry := l.allow(a); ok || retry != time.Minute {
		t.Fatalf("a's second: %v %v", ok, retry)
	}
	if ok, _ := l.allow(b); !ok {
		t.Fatal("b is another client")
	}
	// An IPv6 client is counted by its /64.
	if ok, _ := l.allow(rateKey(netip.MustParseAddr("2001:db8:0:1::1"))); !ok {
		t.Fatal("v6 first")
	}
	if ok, _ := l.allow(rateKey(netip.MustParseAddr("2001:db8:0:1::2"))); ok {
		t.Fatal("another address of the same /64 is the same client")
	}
}

func TestRateLimitMemoryBound(t *testing.T) {
	clk := testkit.NewClock()
	const max = 100
	l := newLimiter(route.Rate{N: 1, Per: time.Second, Burst: 1}, clk.Now, max)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range 10 * max {
		l.allow(addr(i))
		if n := l.clients(); n > max {
			t.Fatalf("%d clients tracked, bound %d", n, max)
		}
	}
	// Idle clients expire: after their interval all are back to a full
	// burst, and the next new client makes room by dropping them.
	clk.Advance(2 * time.Second)
	for i := range max {
		l.allow(addr(20*max + i))
	}
	if n := l.clients(); n > max {
		t.Fatalf("%d clients after expiry", n)
	}
	for i := range max {
		if ok, _ := l.allow(addr(20*max + i)); ok {
			t.Fatalf("a client seen since the expiry lost its state")
		}
	}
}

func TestLimitsAcrossBuilds(t *testing.T) {
	clk := testkit.NewClock()
	ls := NewLimits()
	rate := route.Rate{N: 1, Per: time.Minute, Burst: 1}
	a := netip.MustParseAddr("192.0.2.1")
	if ok, _ := ls.get("web", rate, clk.Now).allow(a); !ok {
		t.Fatal("first")
	}
	if ok, _ := ls.get("web", rate, clk.Now).allow(a); ok {
		t.Fatal("a rebuild handed the client a fresh burst")
	}
	rate.N = 2
	if ok, _ := ls.get("web", rate, clk.Now).allow(a); !ok {
		t.Fatal("a new rate starts afresh")
	}
	ls.Keep(func(id string) bool { return id != "web" })
	if len(ls.m) != 0 {
		t.Fatal("Keep kept a route that left")
	}
}

func TestHeaders(t *testing.T) {
	var up upstream
	p := &route.Policy{
		RequestHeaders:  []route.Header{{Name: "X-Tenant", Value: "shop"}, {Name: "Cookie"}},
		ResponseHeaders: []route.Header{{Name: "Server"}, {Name: "X-Frame-Options", Value: "DENY"}},
	}
	srv := serve(t, p, Options{}, up.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.2.3")
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		w.Write([]byte("ok"))
	}), "")
	resp, _ := get(t, srv.URL, "X-Tenant", "evil", "Cookie", "a=b")
	in := up.last.Load().Header
	if in.Get("X-Tenant") != "shop" || in.Get("Cookie") != "" {
		t.Errorf("request fields upstream: %v", in)
	}
	if resp.Header.Get("Server") != "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("response fields: %v", resp.Header)
	}
}

func TestCORS(t *testing.T) {
	var up upstream
	p := &route.Policy{CORS: route.CORS{
		Origins: []string{"https://app.example.org"}, Methods: []string{"GET", "PUT"},
		Headers: []string{"Content-Type", "X-Csrf-Token"}, Credentials: true, MaxAge: 10 * time.Minute,
	}}
	srv := serve(t, p, Options{}, up.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // the upstream's own, overruled
		w.Write([]byte("ok"))
	}), "")
	preflight := func(origin, method, headers string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		resp, _ := do(t, req)
		return resp
	}
	resp := preflight("https://app.example.org", "PUT", "content-type, x-csrf-token")
	want := map[string]string{
		"Access-Control-Allow-Origin": "https://app.example.org", "Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers": "Content-Type, X-Csrf-Token",
		"Access-Control-Max-Age": "600",
	}
	if resp.StatusCode != 204 {
		t.Errorf("allowed preflight: %d", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("preflight %s: %q, want %q", k, got, v)
		}
	}
	for _, c := range []struct{ origin, method, headers string }{
		{"https://evil.example.org", "PUT", ""},
		{"https://app.example.org", "DELETE", ""},
		{"https://app.example.org", "PUT", "X-Other"},
	} {
		if resp := preflight(c.origin, c.method, c.headers); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %v: %d %v", c, resp.StatusCode, resp.Header)
		}
	}
	if n := up.hits.Load(); n != 0 {
		t.Errorf("preflights reached the upstream %d times", n)
	}

	resp, _ = get(t, srv.URL, "Origin", "https://app.example.org")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("actual request from an allowed origin: %v", resp.Header)
	}
	resp, _ = get(t, srv.URL, "Origin", "https://evil.example.org")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("actual request from another origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = get(t, srv.URL)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("a request without Origin is untouched: %v", resp.Header)
	}
}

func TestCORSAnyOrigin(t *testing.T) {
	srv := serve(t, &route.Policy{CORS: route.CORS{Origins: []string{"*"}, Headers: []string{"*"}}}, Options{}, http.NotFoundHandler(), "")
	req, _ := http.NewRequest(http.MethodOptions, srv.URL, nil)
	req.Header.Set("Origin", "https://any.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "x-a")
	resp, _ := do(t, req)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Headers") != "x-a" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET, HEAD, POST" {
		t.Errorf("preflight with origins=*: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestBodyLimit(t *testing.T) {
	var up upstream
	srv := serve(t, &route.Policy{BodyMax: 1000}, Options{}, up.handler(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		up.body.Store(n)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.Write([]byte("ok"))
	}), "")
	post := func(body io.Reader, length int64) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
		req.ContentLength = length
		resp, _ := do(t, req)
		return resp.StatusCode
	}
	if code := post(bytes.NewReader(make([]byte, 1000)), 1000); code != 200 || up.body.Load() != 1000 {
		t.Errorf("1000 bytes with Content-Length: %d, upstream read %d", code, up.body.Load())
	}
	hits := up.hits.Load()
	if code := post(bytes.NewReader(make([]byte, 1001)), 1001); code != 413 || up.hits.Load() != hits {
		t.Errorf("1001 bytes with Content-Length: %d; upstream called: %v", code, up.hits.Load() != hits)
	}
	// Chunked: no length to refuse up front; the body is cut at the limit.
	chunked := func(n int) io.Reader { return io.MultiReader(bytes.NewReader(make([]byte, n))) }
	if code := post(chunked(900), -1); code != 200 {
		t.Errorf("900 bytes chunked: %d", code)
	}
	if code := post(chunked(5000), -1); code != 413 || up.body.Load() > 1000 {
		t.Errorf("5000 bytes chunked: %d, upstream read %d (limit 1000)", code, up.body.Load())
	}
}

// compressible body of n bytes.
func text(n int) []byte { return bytes.Repeat([]byte("swarmgate compresses text. "), n/27+1)[:n] }

func TestCompressNegotiation(t *testing.T) {
	body := text(8 << 10)
	srv := serve(t, &route.Policy{Compress: []string{Zstd, Brotli, Gzip}}, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", "8192")
		w.Header().Set("Etag", `"v1"`)
		w.Write(body)
	}), "")
	for _, c := range []struct{ accept, want string }{
		{"gzip", Gzip}, {"br;q=1, gzip;q=0.8", Brotli}, {"gzip, deflate, br, zstd", Zstd}, {"", ""}, {"identity", ""},
	} {
		resp, raw := get(t, srv.URL, "Accept-Encoding", c.accept)
		if got := resp.Header.Get("Content-Encoding"); got != c.want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", c.accept, got, c.want)
			continue
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: no Vary", c.accept)
		}
		if c.want == "" {
			if raw != string(body) {
				t.Errorf("identity body differs")
			}
			continue
		}
		if resp.Header.Get("Etag") != `W/"v1"` || resp.ContentLength == int64(len(body)) {
			t.Errorf("%s: Etag %q, length %d", c.want, resp.Header.Get("Etag"), resp.ContentLength)
		}
		if dec := decode(t, c.want, strings.NewReader(raw)); !bytes.Equal(dec, body) {
			t.Errorf("%s: decoded body differs (%d bytes, want %d)", c.want, len(dec), len(body))
		}
		if len(raw) >= len(body)/4 {
			t.Errorf("%s: %d bytes for %d of repetitive text", c.want, len(raw), len(body))
		}
	}
}

func TestCompressLeavesAlone(t *testing.T) {
	cases := []struct {
		name   string
		header map[string]string
		code   int
		body   []byte
		req    map[string]string
	}{
		{"small", map[string]string{"Content-Type": "text/plain", "Content-Length": "100"}, 200, text(100), nil},
		{"small of unknown length", map[string]string{"Content-Type": "text/plain"}, 200, text(1000), nil},
		{"encoded already", map[string]string{"Content-Type": "text/plain", "Content-Encoding": "br"}, 200, text(5000), nil},
		{"image", map[string]string{"Content-Type": "image/png"}, 200, text(5000), nil},
		{"no type", nil, 200, text(5000), nil},
		{"no-transform", map[string]string{"Content-Type": "text/plain", "Cache-Control": "public, no-transform"}, 200, text(5000), nil},
		{"partial content", map[string]string{"Content-Type": "text/plain", "Content-Range": "bytes 0-4999/9000"}, 206, text(5000), nil},
		{"range request", map[string]string{"Content-Type": "text/plain"}, 200, text(5000), map[string]string{"Range": "bytes=0-"}},
		{"event stream", map[string]string{"Content-Type": "text/event-stream"}, 200, text(5000), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := serve(t, &route.Policy{Compress: []string{Gzip}}, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.code)
				w.Write(c.body)
			}), "")
			req := []string{"Accept-Encoding", "gzip"}
			for k, v := range c.req {
				req = append(req, k, v)
			}
			resp, raw := get(t, srv.URL, req...)
			if ce := resp.Header.Get("Content-Encoding"); ce != c.header["Content-Encoding"] || raw != string(c.body) {
				t.Errorf("Content-Encoding %q, body of %d bytes; want it untouched", ce, len(raw))
			}
		})
	}
}

// TestCompressStreams checks that a flush of the response reaches the
// client decoded, before the response ends.
func TestCompressStreams(t *testing.T) {
	next := make(chan struct{})
	defer close(next)
	srv := serve(t, &route.Policy{Compress: []string{Gzip}}, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write([]byte("{\"n\":1}\n"))
		w.(http.Flusher).Flush()
		<-next
	}), "")
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp := roundTrip(t, req)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != Gzip {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := newGzipReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(zr).ReadString('\n')
	if err != nil || line != "{\"n\":1}\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
}

// TestCompressBoundedMemory streams 100 MiB through each encoding and
// checks that the heap does not grow with the body.
func TestCompressBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100 MiB")
	}
	const size = 100 << 20
	chunk := text(32 << 10)
	srv := serve(t, &route.Policy{Compress: []string{Zstd, Brotli, Gzip}}, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), "")
	for _, enc := range []string{Gzip, Zstd, Brotli} {
		t.Run(enc, func(t *testing.T) {
			var peak atomic.Uint64
			stop := sampleHeap(&peak)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("Accept-Encoding", enc)
			resp := roundTrip(t, req)
			n, err := io.Copy(io.Discard, decodeStream(t, enc, resp.Body))
			resp.Body.Close()
			base := stop()
			if err != nil || n != size {
				t.Fatalf("decoded %d bytes, %v; want %d", n, err, size)
			}
			if grew := int64(peak.Load()) - int64(base); grew > 16<<20 {
				t.Errorf("heap peaked %d MiB above its start for a 100 MiB stream", grew>>20)
			}
			t.Logf("%s: heap peak %d MiB above start", enc, (int64(peak.Load())-int64(base))>>20)
		})
	}
}

func TestWraps(t *testing.T) {
	for _, tc := range []struct {
		p    *route.Policy
		want bool
	}{
		{nil, false},
		{&route.Policy{}, false},
		{&route.Policy{MatchHeader: route.Match{Name: "X-Canary", Value: "1"}, MatchCookie: route.Match{Name: "b", Value: "1"}}, false},
		{&route.Policy{MatchHeader: route.Match{Name: "X-Canary", Value: "1"}, BodyMax: 1}, true},
		{&route.Policy{ForwardAuth: "http://auth/"}, true},
	} {
		if got := Wraps(tc.p); got != tc.want {
			t.Errorf("Wraps(%+v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}
