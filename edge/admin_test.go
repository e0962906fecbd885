package edge

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/route"
)

// TestAdminAccess: health answers everyone; metrics, routes and profiles
// only allowed networks, with the token when one is set, and profiles only
// loopback clients unless a token is set.
func TestAdminAccess(t *testing.T) {
	te := startEdge(t, route.Config{}, time.Second)
	handler := func(o AdminOptions) http.Handler {
		a := NewAdmin(te.e, prometheus.NewRegistry(), o)
		a.SetReady(true)
		return a.Handler()
	}
	open := handler(AdminOptions{Pprof: true})
	tokened := handler(AdminOptions{Pprof: true, Token: "s3cret", Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}})
	for _, tt := range []struct {
		name   string
		h      http.Handler
		peer   string
		path   string
		bearer string
		want   int
	}{
		{"health from the internet", open, "203.0.113.5:4000", "/healthz", "", 200},
		{"readiness from the internet", open, "203.0.113.5:4000", "/readyz", "", 200},
		{"metrics from the internet", open, "203.0.113.5:4000", "/metrics", "", 403},
		{"routes from the internet", open, "203.0.113.5:4000", "/api/routes", "", 403},
		{"metrics from the overlay", open, "10.0.1.7:4000", "/metrics", "", 200},
		{"routes from loopback", open, "127.0.0.1:4000", "/api/routes", "", 200},
		{"routes from IPv6 loopback", open, "[::1]:4000", "/api/routes", "", 200},
		{"profiles from the overlay without a token", open, "10.0.1.7:4000", "/debug/pprof/", "", 403},
		{"profiles from loopback", open, "127.0.0.1:4000", "/debug/pprof/", "", 200},
		{"token missing", tokened, "203.0.113.5:4000", "/metrics", "", 401},
		{"token wrong", tokened, "203.0.113.5:4000", "/metrics", "nope", 401},
		{"token right", tokened, "203.0.113.5:4000", "/metrics", "s3cret", 200},
		{"profiles with the token", tokened, "203.0.113.5:4000", "/debug/pprof/", "s3cret", 200},
		{"health needs no token", tokened, "203.0.113.5:4000", "/healthz", "", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.RemoteAddr = tt.peer
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%s from %s: %d %q, want %d", tt.path, tt.peer, rec.Code, rec.Body.String(), tt.want)
			}
			if strings.Contains(rec.Body.String(), "s3cret") {
				t.Fatal("the token appears in a response")
			}
		})
	}
	// Without --admin-pprof there are no profiles at all.
	req := httptest.NewRequest("GET", "/debug/pprof/", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	rec := httptest.NewRecorder()
	handler(AdminOptions{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without Pprof: %d, want 404", rec.Code)
	}
}
