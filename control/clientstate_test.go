package control

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// TestClientStatePatchesAsItBuilds applies random deltas to a client state
// and checks, after each, that the patched Config and the version are those
// of building from every item, as a snapshot of the same state gives, that
// its Delta names every route that differs from the Config before, and
// that the Config before is as it was handed out. With recycle, the
// Configs' routes are patched in place from the Config before last: the
// last one must still not change.
func TestClientStatePatchesAsItBuilds(t *testing.T) {
	for _, recycle := range []bool{false, true} {
		t.Run(fmt.Sprintf("recycle=%v", recycle), func(t *testing.T) { testClientStatePatches(t, recycle) })
	}
}

func testClientStatePatches(t *testing.T, recycle bool) {
	var last route.Config
	var lastRoutes []route.Route // a copy of last.Routes, which must not change
	deltas, recycled := 0, 0
	rng := rand.New(rand.NewPCG(5, 8))
	state := newClientState(recycle)
	var beforeLast []route.Route
	state.reset(map[string]decoded{})
	items := map[string]json.RawMessage{}
	routeItem := func(id string) json.RawMessage {
		w := toWire(&route.Route{Service: id, Hosts: []string{id + ".example.org"}, Path: "/", Port: 80 + rng.IntN(3), Weight: 1})
		raw, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for step := range 300 {
		set, del := map[string]json.RawMessage{}, []string{}
		n := 1 + rng.IntN(4)
		if step%50 == 49 {
			n = maxPatch + 10 // a large delta: re-sort and rebuild
		}
		for range n {
			id := fmt.Sprintf("svc%02d", rng.IntN(40))
			switch rng.IntN(5) {
			case 0, 1:
				set[keyRoute+id] = routeItem(id)
			case 2:
				set[keyEndpoints+id] = json.RawMessage(fmt.Sprintf(`["10.0.%d.%d:80"]`, step%250, rng.IntN(250)))
			case 3:
				set[keyErrors+id] = json.RawMessage(fmt.Sprintf(`[{"label":"swarmgate.port","value":"%d","reason":"bad"}]`, step))
			default:
				keys := slices.Sorted(func(yield func(string) bool) {
					for k := range items {
						if !yield(k) {
							return
						}
					}
				})
				if len(keys) > 0 {
					k := keys[rng.IntN(len(keys))]
					if _, setToo := set[k]; !setToo {
						del = append(del, k)
					}
				}
			}
		}
		decodedSet := map[string]decoded{}
		if err := decodeSet(decodedSet, set); err != nil {
			t.Fatal(err)
		}
		state.change(decodedSet, del)
		for _, k := range del {
			delete(items, k)
		}
		for k, raw := range set {
			items[k] = raw
		}
		at := time.Unix(int64(step), 0)
		got := state.config(at)
		checkDelta(t, step, last, got)
		if got.Delta != nil {
			deltas++
		}
		if !reflect.DeepEqual(last.Routes, lastRoutes) {
			t.Fatalf("step %d: the Config handed out before changed", step)
		}
		if shared(got.Routes, beforeLast) && !shared(got.Routes, last.Routes) {
			recycled++
		}
		if shared(got.Routes, last.Routes) && got.Delta != nil && len(got.Delta.Routes) > 0 {
			t.Fatalf("step %d: a Config with changed routes shares the last one's", step)
		}
		beforeLast = last.Routes
		last, lastRoutes = got, slices.Clone(got.Routes)
		got.Gen, got.Delta = 0, nil

		all := map[string]decoded{}
		if err := decodeSet(all, items); err != nil {
			t.Fatal(err)
		}
		keys := sortedKeys(all)
		want := buildConfig(all, keys, at)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: patched Config differs from a built one:\n got %+v\nwant %+v", step, got, want)
		}
		if v, w := state.version(), versionOf(keys, func(k string) [32]byte { return all[k].sum }); v != w {
			t.Fatalf("step %d: version %s, want %s", step, v, w)
		}
	}
	if deltas < 250 {
		t.Errorf("%d Configs of 300 came with a Delta", deltas)
	}
	if recycle && recycled < 150 {
		t.Errorf("%d Configs of 300 reused the routes of the Config before last", recycled)
	} else if !recycle && recycled > 0 {
		t.Errorf("%d Configs of 300 reused the routes of the Config before last without recycle", recycled)
	}
}

// shared reports whether two route slices share their first element.
func shared(a, b []route.Route) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

// checkDelta fails t unless cfg has a new Gen and, if it has a Delta, the
// Delta starts from prev and names every route that is not in both or not
// the Same in both.
func checkDelta(t *testing.T, step int, prev, cfg route.Config) {
	t.Helper()
	if cfg.Gen == 0 || cfg.Gen == prev.Gen {
		t.Fatalf("step %d: Gen %d after %d", step, cfg.Gen, prev.Gen)
	}
	if cfg.Delta == nil {
		return
	}
	if cfg.Delta.From != prev.Gen {
		t.Fatalf("step %d: Delta from %d, the Config before is %d", step, cfg.Delta.From, prev.Gen)
	}
	byID := func(rs []route.Route) map[string]*route.Route {
		m := map[string]*route.Route{}
		for i := range rs {
			m[rs[i].ID()] = &rs[i]
		}
		return m
	}
	before, after := byID(prev.Routes), byID(cfg.Routes)
	for id, r := range after {
		if b := before[id]; (b == nil || !route.Same(b, r)) && !slices.Contains(cfg.Delta.Routes, id) {
			t.Fatalf("step %d: route %s changed, and the Delta %v does not name it", step, id, cfg.Delta.Routes)
		}
	}
	for id := range before {
		if after[id] == nil && !slices.Contains(cfg.Delta.Routes, id) {
			t.Fatalf("step %d: route %s went, and the Delta %v does not name it", step, id, cfg.Delta.Routes)
		}
	}
}
