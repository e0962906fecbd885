package policy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// authService answers forward-auth questions with answer and keeps the
// last one it was asked.
func authService(t *testing.T, answer http.HandlerFunc) (*httptest.Server, *upstream) {
	t.Helper()
	seen := &upstream{}
	srv := httptest.NewServer(seen.handler(answer))
	t.Cleanup(srv.Close)
	return srv, seen
}

// authTransport is the tests' Options.AuthTransport, closed with the test.
func authTransport(t *testing.T) *http.Transport {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func TestParseAuthURL(t *testing.T) {
	runParse(t, ParseAuthURL, eq, []parseCase[string]{
		{in: "http://auth:9091/verify", want: "http://auth:9091/verify"},
		{in: "https://auth.example.org/api/verify?rd=x", want: "https://auth.example.org/api/verify?rd=x"},
		{in: "http://10.0.0.5:4180", want: "http://10.0.0.5:4180"},
		{in: "http://[::1]:4180/", want: "http://[::1]:4180/"},
		{in: "auth:9091/verify", err: "want an http or https URL"},
		{in: "ftp://auth/verify", err: "want an http or https URL"},
		{in: "/verify", err: "want an http or https URL"},
		{in: "http://user:pw@auth/verify", err: "without user info"},
		{in: "http://auth/verify#x", err: "without user info or fragment"},
		{in: "http://auth:99999/", err: `port "99999"`},
		{in: "http://au_th/", err: `host "au_th"`},
	})
}

func TestParseAuthHeaders(t *testing.T) {
	runParse(t, ParseAuthHeaders, func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }, []parseCase[[]string]{
		{in: "remote-user, Remote-Groups", want: []string{"Remote-User", "Remote-Groups"}},
		{in: "Authorization", want: []string{"Authorization"}},
		{in: "Remote-User,", err: "empty field name"},
		{in: "Content-Length", err: "framing"},
		{in: "X-Forwarded-For", err: "set by the edge"},
		{in: "Remote_User", err: "without '_'"},
		{in: "A, a", err: "listed twice"},
	})
}

func TestForwardAuthAllowsAndCopiesFields(t *testing.T) {
	auth, asked := authService(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Remote-User", "alice")
		w.Header().Add("Remote-Groups", "admins")
		w.Header().Add("Remote-Groups", "dev")
		w.Header().Set("X-Auth-Only", "not copied")
		w.WriteHeader(http.StatusNoContent)
	})
	up := &upstream{}
	srv := serve(t, &route.Policy{ForwardAuth: auth.URL + "/verify?app=shop", ForwardAuthHeaders: []string{"Remote-User", "Remote-Groups", "Remote-Email"}},
		Options{AuthTransport: authTransport(t)}, up.handler(nil), "192.0.2.7:5000")

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/cart/add?item=7", strings.NewReader("item=7"))
	req.Host = "shop.example.org"
	req.Header.Set("Cookie", "session=abc")
	req.Header.Set("Remote-Email", "mallory@example.org") // a claim the auth service did not make
	req.Header.Set("X-Forwarded-Uri", "/admin")           // nor this one
	if resp, body := do(t, req); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("allowed request: %d %q", resp.StatusCode, body)
	}
	q := asked.last.Load()
	want := map[string]string{
		"X-Forwarded-Method": "POST", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.example.org",
		"X-Forwarded-Uri": "/cart/add?item=7", "X-Forwarded-For": "192.0.2.7", "Cookie": "session=abc",
	}
	for k, v := range want {
		if got := q.Header.Get(k); got != v {
			t.Errorf("auth service got %s %q, want %q", k, got, v)
		}
	}
	if q.Method != http.MethodPost || q.URL.RequestURI() != "/verify?app=shop" || q.ContentLength != 0 || asked.body.Load() != 0 {
		t.Errorf("auth request %s %s, length %d, body %d bytes", q.Method, q.URL.RequestURI(), q.ContentLength, asked.body.Load())
	}
	got := up.last.Load()
	if got.Header.Get("Remote-User") != "alice" || strings.Join(got.Header.Values("Remote-Groups"), ",") != "admins,dev" ||
		got.Header.Get("Remote-Email") != "" || got.Header.Get("X-Auth-Only") != "" {
		t.Errorf("upstream fields %v", got.Header)
	}
}

func TestForwardAuthRefusalPassesThrough(t *testing.T) {
	auth, _ := authService(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "https://login.example.org/?rd=https://"+r.Header.Get("X-Forwarded-Host")+r.Header.Get("X-Forwarded-Uri"))
		w.Header().Set("Set-Cookie", "flow=1; HttpOnly")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusFound)
		w.Write([]byte("<a href=login>log in</a>"))
	})
	up := &upstream{}
	var replied []int
	srv := serve(t, &route.Policy{ForwardAuth: auth.URL}, Options{AuthTransport: authTransport(t),
		Relay: func(w http.ResponseWriter, r *http.Request, code int, body []byte, reason string) {
			replied = append(replied, code)
			plainRelay(w, r, code, body, reason)
		}}, up.handler(nil), "")

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders", nil)
	req.Host = "shop.example.org"
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://login.example.org/?rd=https://shop.example.org/orders" ||
		resp.Header.Get("Set-Cookie") != "flow=1; HttpOnly" || resp.Header.Get("Content-Type") != "text/html" || body != "<a href=login>log in</a>" {
		t.Errorf("refusal: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if up.hits.Load() != 0 || len(replied) != 1 || replied[0] != http.StatusFound {
		t.Errorf("upstream hits %d, relayed %v", up.hits.Load(), replied)
	}

	// A 401 with its challenge, and a login page over the bound.
	for _, tc := range []struct {
		answer http.HandlerFunc
		code   int
	}{
		{func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shop"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, http.StatusUnauthorized},
		{func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write(make([]byte, maxAuthBody+1))
		}, http.StatusServiceUnavailable},
	} {
		auth, _ := authService(t, tc.answer)
		srv := serve(t, &route.Policy{ForwardAuth: auth.URL}, Options{AuthTransport: authTransport(t)}, up.handler(nil), "")
		if resp, _ := get(t, srv.URL+"/"); resp.StatusCode != tc.code {
			t.Errorf("got %d, want %d", resp.StatusCode, tc.code)
		}
	}
	if up.hits.Load() != 0 {
		t.Errorf("upstream reached %d times", up.hits.Load())
	}
}

func TestForwardAuthFailureIs503(t *testing.T) {
	// An address nobody listens on: the auth service is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/verify"
	ln.Close()

	// One that never answers within the timeout; it is released at the end.
	release := make(chan struct{})
	slow, _ := authService(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)

	up := &upstream{}
	for _, target := range []string{down, slow.URL} {
		var reasons []string
		srv := serve(t, &route.Policy{ForwardAuth: target}, Options{
			AuthTransport: authTransport(t), AuthTimeout: 50 * time.Millisecond,
			Reply: func(w http.ResponseWriter, r *http.Request, code int, reason string) {
				reasons = append(reasons, reason)
				plainReply(w, r, code, reason)
			}}, up.handler(nil), "")
		if resp, _ := get(t, srv.URL+"/"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: %d, want 503", target, resp.StatusCode)
		}
		if len(reasons) != 1 || !strings.HasPrefix(reasons[0], "auth service: ") {
			t.Errorf("%s: reasons %q", target, reasons)
		}
	}
	if up.hits.Load() != 0 {
		t.Errorf("a failing auth service let %d requests through", up.hits.Load())
	}
}
