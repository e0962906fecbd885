package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestMatchCanaryWhateverTheWeights: with weights 100/0, requests that
// match the canary all reach it, and no other request does.
func TestMatchCanaryWhateverTheWeights(t *testing.T) {
	stable, canary, cookie := testkit.Backend(t, "stable"), testkit.Backend(t, "canary"), testkit.Backend(t, "cookie")
	st := testkit.Route("stable", []string{"shop.example.org"}, "/", testkit.Addr(stable))
	st.Weight = 100
	ca := testkit.Route("canary", []string{"shop.example.org"}, "/", testkit.Addr(canary))
	ca.Weight = 0
	ca.Policy = &route.Policy{MatchHeader: route.Match{Name: "X-Canary", Value: "1"}}
	ck := testkit.Route("cookie", []string{"shop.example.org"}, "/", testkit.Addr(cookie))
	ck.Weight = 0
	ck.Policy = &route.Policy{MatchCookie: route.Match{Name: "beta", Value: "yes"}}
	e := startEdge(t, route.Config{Routes: []route.Route{st, ca, ck}})

	tests := []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"no field", nil, "stable"},
		{"the field", map[string]string{"X-Canary": "1"}, "canary"},
		{"another value", map[string]string{"X-Canary": "2"}, "stable"},
		{"the cookie", map[string]string{"Cookie": "a=b; beta=yes"}, "cookie"},
		{"another cookie value", map[string]string{"Cookie": "beta=no"}, "stable"},
		{"a field named like the cookie", map[string]string{"Beta": "yes"}, "stable"},
		{"both: the oldest member first", map[string]string{"X-Canary": "1", "Cookie": "beta=yes"}, "canary"},
	}
	for _, tc := range tests {
		for range 20 {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/cart", nil)
			req.Host = "shop.example.org"
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if got, _, _ := strings.Cut(body, " "); resp.StatusCode != 200 || got != tc.want {
				t.Fatalf("%s: %d %q, want %s", tc.name, resp.StatusCode, body, tc.want)
			}
		}
	}
}

// TestMatchOnlyGroup: a group whose every member has a match serves the
// requests that match and answers 503 to the rest; a route with only a
// match runs no policy chain.
func TestMatchOnlyGroup(t *testing.T) {
	canary := testkit.Backend(t, "canary")
	ca := testkit.Route("canary", []string{"shop.example.org"}, "/", testkit.Addr(canary))
	ca.Policy = &route.Policy{MatchHeader: route.Match{Name: "X-Canary", Value: "1"}, MatchCookie: route.Match{Name: "beta", Value: "yes"}}
	e := startEdge(t, route.Config{Routes: []route.Route{ca}})
	if tg := e.p.Table().targets[0]; tg.guard != nil || tg.match == nil {
		t.Fatalf("guard %v, match %v", tg.guard, tg.match)
	}
	send := func(canaryField, cookie bool) int {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = "shop.example.org"
		if canaryField {
			req.Header.Set("X-Canary", "1")
		}
		if cookie {
			req.AddCookie(&http.Cookie{Name: "beta", Value: "yes"})
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	if got := []int{send(true, true), send(true, false), send(false, true)}; got[0] != 200 || got[1] != 503 || got[2] != 503 {
		t.Errorf("both, field only, cookie only: %v, want [200 503 503]", got)
	}
}

// TestPickWithoutMatchersAllocatesNothing: a group without matchers picks
// as it did before matchers existed.
func TestPickWithoutMatchersAllocatesNothing(t *testing.T) {
	a, b := testkit.Route("a", []string{"shop.example.org"}, "/", "10.0.0.1:80"), testkit.Route("b", []string{"shop.example.org"}, "/", "10.0.0.2:80")
	b.Weight = 5
	p := New(Options{})
	defer p.Close()
	tbl := p.Build(route.Config{Routes: []route.Route{a, b}})
	g, _, ok := tbl.http.Lookup("shop.example.org", "/")
	if !ok || g.matched != nil || len(g.shared) != 2 {
		t.Fatalf("group %+v", g)
	}
	req := httptest.NewRequest(http.MethodGet, "http://shop.example.org/", nil)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { g.pick(req, now) }); n != 0 {
		t.Errorf("pick allocates %v times", n)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
