package control

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// mutate applies one random change to cfg, in place: what a Swarm does
// between two Configs (endpoints moving, services coming and going, a
// label changed or broken or fixed), plus what a source should not do but
// may (two routes with one ID).
func mutate(rng *rand.Rand, cfg *route.Config, next *int) string {
	n := len(cfg.Routes)
	pick := func() *route.Route { return &cfg.Routes[rng.IntN(n)] }
	switch op := rng.IntN(10); {
	case op < 3 && n > 0:
		r := pick()
		r.Endpoints = append(slices.Clone(r.Endpoints), fmt.Sprintf("10.9.%d.%d:8080", rng.IntN(250), rng.IntN(250)))
		slices.Sort(r.Endpoints)
		return "endpoint added"
	case op == 3 && n > 0:
		r := pick()
		if len(r.Endpoints) > 0 {
			r.Endpoints = slices.Delete(slices.Clone(r.Endpoints), 0, 1)
		}
		return "endpoint removed"
	case op == 4:
		*next++
		r := testRoute(fmt.Sprintf("svc%04d", *next), "10.8.0.1:8080")
		if rng.IntN(3) == 0 {
			r.Endpoints = nil
		}
		at := rng.IntN(n + 1)
		cfg.Routes = slices.Insert(slices.Clone(cfg.Routes), at, r)
		return "service added"
	case op == 5 && n > 0:
		i := rng.IntN(n)
		cfg.Routes = slices.Delete(slices.Clone(cfg.Routes), i, i+1)
		return "service removed"
	case op == 6 && n > 0:
		r := pick()
		r.Path = fmt.Sprintf("/p%d", rng.IntN(4))
		return "route changed"
	case op == 7 && n > 0:
		d := *pick() // the same ID twice: the second travels as ID#2
		d.Hosts = []string{fmt.Sprintf("dup%d.example.org", rng.IntN(100))}
		cfg.Routes = slices.Insert(slices.Clone(cfg.Routes), rng.IntN(n+1), d)
		return "duplicate ID"
	case op == 8:
		svc := fmt.Sprintf("bad%d", rng.IntN(4))
		cfg.Errors = append(slices.Clone(cfg.Errors), &route.LabelError{Service: svc, Label: "swarmgate.port",
			Value: fmt.Sprint(rng.IntN(3)), Reason: "not a port"})
		return "label error"
	case op == 9 && len(cfg.Errors) > 0:
		cfg.Errors = slices.Delete(slices.Clone(cfg.Errors), 0, 1)
		if len(cfg.Errors) == 0 {
			cfg.Errors = nil // as a source reports none
		}
		return "label error fixed"
	}
	cfg.Changed = cfg.Changed.Add(time.Second)
	return "nothing but Changed"
}

// TestUpdateMatchesFullEncoding checks that the versions Update derives
// from the one before are what a replica that saw only the last Config
// holds: the same items and the same version (edges of other builds
// check it), through random sequences of changes; and that each version's
// delta brings an edge from the version before to it.
func TestUpdateMatchesFullEncoding(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := NewServer(ServerOptions{History: 16})
		cfg := manyRoutes(20, int(seed))
		next := 1000
		c, err := NewClient(ClientOptions{Addrs: []string{"tcp://control:7070"}})
		if err != nil {
			t.Fatal(err)
		}
		var got route.Config
		deliver := func(cfg route.Config) { got = cfg }
		s.Update(cfg)
		if _, err := c.apply(bytes.TrimSuffix(s.cur.Load().snapshotFrame(), []byte("\n")), deliver); err != nil {
			t.Fatal(err)
		}
		for step := range 60 {
			what := mutate(rng, &cfg, &next)
			prev := s.cur.Load()
			s.Update(cfg)
			v := s.cur.Load()
			enc, err := encodeConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			keys := sortedKeys(enc)
			want := versionOf(keys, func(k string) [sha256.Size]byte { return sumItem(k, enc[k]) })
			where := fmt.Sprintf("seed %d step %d (%s)", seed, step, what)
			if v.id != want {
				t.Fatalf("%s: version %s, a full encoding's %s", where, v.id, want)
			}
			if !slices.Equal(v.keys, keys) {
				t.Fatalf("%s: keys %v, want %v", where, v.keys, keys)
			}
			for i, k := range keys {
				if !bytes.Equal(v.items[i].raw, enc[k]) || v.items[i].sum != sumItem(k, enc[k]) {
					t.Fatalf("%s: item %s is %s, want %s", where, k, v.items[i].raw, enc[k])
				}
			}
			if v == prev {
				continue // no new version: nothing but Changed moved
			}
			if v.prev != prev.id {
				t.Fatalf("%s: version %s follows %s, not %s", where, v.id, v.prev, prev.id)
			}
			var f wireFrame
			if err := json.Unmarshal(v.live, &f); err != nil {
				t.Fatal(err)
			}
			for k := range f.Set {
				if _, ok := prev.item(k); ok && bytes.Equal(mustItem(t, prev, k).raw, f.Set[k]) {
					t.Errorf("%s: delta carries %s, which did not change", where, k)
				}
			}
			if _, err := c.apply(bytes.TrimSuffix(v.live, []byte("\n")), deliver); err != nil {
				t.Fatalf("%s: the edge cannot apply the delta: %v", where, err)
			}
			if !sameConfig(sortErrors(got), sortErrors(cfg)) {
				t.Fatalf("%s: the edge holds %d routes and %d label errors, not the Config's %d and %d, or other ones",
					where, len(got.Routes), len(got.Errors), len(cfg.Routes), len(cfg.Errors))
			}
		}
	}
}

// sortErrors orders a Config's label errors fully: the stream carries a
// service's errors sorted, whatever order the source reported them in.
func sortErrors(c route.Config) route.Config {
	c.Errors = slices.Clone(c.Errors)
	slices.SortFunc(c.Errors, func(a, b *route.LabelError) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Label, b.Label),
			strings.Compare(a.Value, b.Value), strings.Compare(a.Reason, b.Reason))
	})
	return c
}

func mustItem(t *testing.T, v *version, k string) item {
	t.Helper()
	it, ok := v.item(k)
	if !ok {
		t.Fatalf("no item %s", k)
	}
	return it
}

// TestUpdateAfterEncodingError checks that an encoder that lost its state
// (an error mid-way) reports the whole next Config, and that Update then
// still finds the keys gone since the version in force.
func TestUpdateAfterEncodingError(t *testing.T) {
	s := NewServer(ServerOptions{})
	s.Update(manyRoutes(5, 0))
	s.enc.valid = false // as an encoding error leaves it
	cfg := manyRoutes(3, 1)
	s.Update(cfg)
	enc, err := encodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := sortedKeys(enc)
	if v := s.cur.Load(); !slices.Equal(v.keys, keys) {
		t.Fatalf("keys %v, want %v", v.keys, keys)
	}
	var f wireFrame
	if err := json.Unmarshal(s.cur.Load().live, &f); err != nil {
		t.Fatal(err)
	}
	want := []string{"e:svc0003", "e:svc0004", "r:svc0003", "r:svc0004"}
	if !slices.Equal(f.Del, want) {
		t.Fatalf("deleted %v, want %v", f.Del, want)
	}
}
