package router

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchPaths are route prefixes of realistic depth; each host of the large
// table takes five of them.
var benchPaths = []string{
	"/", "/api", "/api/v1", "/api/v2", "/api/v1/users", "/api/v1/orders", "/api/v2/search",
	"/static", "/assets/img", "/assets/js", "/admin", "/admin/reports", "/health", "/metrics",
	"/auth/oauth2/callback", "/graphql", "/ws", "/docs", "/v1/objects", "/uploads/tmp",
}

// benchRequestPaths are request paths: most extend a route, some hit none.
var benchRequestPaths = []string{
	"/", "/index.html", "/api/v1/users/12345", "/api/v1/orders/987/items", "/api/v2/search",
	"/static/css/site.4f3a9c.css", "/assets/js/vendor/react.production.min.js", "/admin/reports/2024/q3",
	"/health", "/auth/oauth2/callback", "/graphql", "/ws", "/docs/getting-started/install",
	"/v1/objects/bucket/key/with/depth", "/favicon.ico", "/apix/not-a-route",
}

type benchRequest struct{ host, path string }

// bigTable builds a table of 10,000 host patterns (9,899 exact hosts, 100
// wildcards, the default backend) with five paths each: 50,000 routes. It
// also returns requests that mix exact hosts, wildcard subdomains and unknown
// hosts, with ports and mixed case.
func bigTable(tb testing.TB) (*Builder[int], []benchRequest) {
	rng := rand.New(rand.NewPCG(7, 8))
	b := NewBuilder[int]()
	hosts := make([]string, 0, 10000)
	hosts = append(hosts, "")
	for team := range 100 {
		hosts = append(hosts, fmt.Sprintf("*.team%d.apps.example.com", team))
	}
	for i := 0; len(hosts) < 10000; i++ {
		hosts = append(hosts, fmt.Sprintf("svc%d.team%d.example.org", i, i%100))
	}
	n := 0
	for _, h := range hosts {
		for _, i := range rng.Perm(len(benchPaths))[:5] {
			if err := b.Insert(h, benchPaths[i], 0, n); err != nil {
				tb.Fatal(err)
			}
			n++
		}
	}
	if n != 50000 {
		tb.Fatalf("built %d routes, want 50000", n)
	}

	reqs := make([]benchRequest, 4096)
	for i := range reqs {
		var host string
		switch r := rng.IntN(10); {
		case r < 7: // exact host
			host = hosts[101+rng.IntN(len(hosts)-101)]
		case r < 9: // wildcard, one or two labels deep
			host = fmt.Sprintf("pr-%d.team%d.apps.example.com", rng.IntN(1000), rng.IntN(100))
			if r == 8 {
				host = "eu." + host
			}
		default: // unknown: default backend
			host = fmt.Sprintf("unknown%d.example.net", rng.IntN(1000))
		}
		switch rng.IntN(4) {
		case 0:
			host += ":443"
		case 1:
			host = strings.ToUpper(host[:1]) + host[1:]
		}
		reqs[i] = benchRequest{host, benchRequestPaths[rng.IntN(len(benchRequestPaths))]}
	}
	return b, reqs
}

func BenchmarkLookup(b *testing.B) {
	bld, reqs := bigTable(b)
	tab := bld.Build()
	hits := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := reqs[i&(len(reqs)-1)]
		if _, _, ok := tab.Lookup(r.host, r.path); ok {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no lookup matched")
	}
}

func BenchmarkLookupSmall(b *testing.B) {
	bld := NewBuilder[int]()
	for i, r := range []struct{ host, path string }{
		{"app.example.org", "/"}, {"app.example.org", "/api"}, {"app.example.org", "/api/v1"},
		{"www.example.org", "/"}, {"admin.example.org", "/"}, {"admin.example.org", "/reports"},
		{"*.example.org", "/"}, {"*.preview.example.org", "/"}, {"", "/"}, {"", "/health"},
	} {
		if err := bld.Insert(r.host, r.path, 0, i); err != nil {
			b.Fatal(err)
		}
	}
	tab := bld.Build()
	reqs := []benchRequest{
		{"app.example.org", "/api/v1/users/1"}, {"www.example.org:443", "/index.html"},
		{"Admin.Example.org", "/reports/q3"}, {"pr-12.preview.example.org", "/"},
		{"x.example.org", "/static/app.js"}, {"other.test", "/health"},
		{"app.example.org", "/apix"}, {"[::1]:8080", "/"},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := reqs[i&(len(reqs)-1)]
		tab.Lookup(r.host, r.path)
	}
}

// BenchmarkBuild measures inserting the 50,000 routes of the large table and
// building it (request generation excluded as far as the timer allows).
func BenchmarkBuild(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		rng := rand.New(rand.NewPCG(7, 8))
		hosts := []string{""}
		for team := range 100 {
			hosts = append(hosts, fmt.Sprintf("*.team%d.apps.example.com", team))
		}
		for i := range 9899 {
			hosts = append(hosts, fmt.Sprintf("svc%d.team%d.example.org", i, i%100))
		}
		b.StartTimer()

		bld := NewBuilder[int]()
		n := 0
		for _, h := range hosts {
			for _, i := range rng.Perm(len(benchPaths))[:5] {
				if err := bld.Insert(h, benchPaths[i], 0, n); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
		if bld.Build().Len() != 50000 {
			b.Fatal("wrong table size")
		}
	}
}

// TestBigTableAllocs proves the zero-allocation claim on the large table too,
// for every kind of request the benchmark makes.
func TestBigTableAllocs(t *testing.T) {
	bld, reqs := bigTable(t)
	tab := bld.Build()
	if tab.Len() != 50000 || len(tab.Routes()) != 50000 {
		t.Fatalf("Len %d Routes %d, want 50000", tab.Len(), len(tab.Routes()))
	}
	allocs := testing.AllocsPerRun(10, func() {
		for _, r := range reqs {
			tab.Lookup(r.host, r.path)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per %d lookups, want 0", allocs, len(reqs))
	}
}
