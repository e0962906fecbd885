package control

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// TestWireExactRoundTrips: a route's Exact flag crosses the stream both
// ways, as "exact": true, and a prefix route's encoding has no exact field
// (omitempty: a prefix route is encoded as it was before exact routes).
func TestWireExactRoundTrips(t *testing.T) {
	exact := testRoute("health", "10.0.0.1:8080")
	exact.Path, exact.Exact = "/health", true
	prefix := testRoute("tree", "10.0.0.2:8080")
	prefix.Path, prefix.Hosts = "/health", exact.Hosts
	slash := testRoute("docs", "10.0.0.3:8080")
	slash.Path, slash.Exact = "/docs/", true // an exact path as written, its slash kept

	for _, r := range []route.Route{exact, prefix, slash} {
		raw, err := json.Marshal(toWire(&r))
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(raw), `"exact":true`); has != r.Exact {
			t.Errorf("%s: wire %s, want exact field %v", r.Service, raw, r.Exact)
		}
		if !r.Exact && strings.Contains(string(raw), `"exact"`) {
			t.Errorf("%s: a prefix route carries an exact field: %s", r.Service, raw)
		}
		var w wireRoute
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		got := fromWire(&w)
		got.Endpoints = r.Endpoints // endpoints travel apart from the route
		if !route.Same(&got, &r) {
			t.Errorf("%s after the wire:\n got %+v\nwant %+v", r.Service, got, r)
		}
	}

	// Through a whole Config's encoding and decoding too.
	cfg := testConfig(exact, prefix, slash)
	enc, err := encodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	items := map[string]decoded{}
	for k, raw := range enc {
		d, err := decodeItem(k, raw)
		if err != nil {
			t.Fatal(err)
		}
		items[k] = d
	}
	got := buildConfig(items, sortedKeys(items), time.Time{})
	want := map[string]bool{"health": true, "tree": false, "docs": true}
	if len(got.Routes) != len(want) {
		t.Fatalf("decoded %d routes, want %d", len(got.Routes), len(want))
	}
	for _, r := range got.Routes {
		if r.Exact != want[r.Service] {
			t.Errorf("%s: Exact %v after the stream, want %v", r.Service, r.Exact, want[r.Service])
		}
	}
	byID := map[string]route.Route{}
	for _, r := range got.Routes {
		byID[r.Service] = r
	}
	for _, r := range cfg.Routes {
		if g := byID[r.Service]; !reflect.DeepEqual(g, r) {
			t.Errorf("%s after the stream:\n got %+v\nwant %+v", r.Service, g, r)
		}
	}
}
