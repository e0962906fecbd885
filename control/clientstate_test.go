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
// of building from every item, as a snapshot of the same state gives.
func TestClientStatePatchesAsItBuilds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	state := newClientState()
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
}
