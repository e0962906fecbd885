package router

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestEditMatchesBuild applies random removals and insertions of prefix and
// exact routes with Edit, a table after another, and checks that each table answers every probe,
// lists every route and counts them exactly as a table built from scratch
// with the same routes does; and that the table edited from is unchanged.
func TestEditMatchesBuild(t *testing.T) {
	hosts := []string{"", "a.example.org", "b.example.org", "*.example.org", "*.b.example.org", "x.a.example.org", "other.net", "*.net"}
	paths := []string{"/", "/api", "/api/v1", "/apix", "/static", "/api/v1/users"}
	probes := []string{"/", "/api", "/api/", "/api/v1", "/api/v10", "/apix/y", "/static/x.css", "/api/v1/users/7", "/zzz", "/static", "/apix"}
	probeHosts := append([]string{"c.example.org", "deep.b.example.org", "A.EXAMPLE.ORG:8080", "unknown.org", "x.net"}, hosts[1:]...)

	type key struct {
		host, path string
		exact      bool
		priority   int
	}
	insert := func(ins func(host, path string, priority int, v int) error, insExact func(host, path string, priority int, v int) error, k key, v int) error {
		if k.exact {
			return insExact(k.host, k.path, k.priority, v)
		}
		return ins(k.host, k.path, k.priority, v)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	routes := map[key]int{} // the routes in force and their values
	table := NewBuilder[int]().Build()
	for step := range 300 {
		before := snapshotOf(table, probeHosts, probes)
		ed := table.Edit()
		want := map[key]int{}
		for k, v := range routes {
			want[k] = v
		}
		for range 1 + rng.IntN(4) {
			k := key{hosts[rng.IntN(len(hosts))], paths[rng.IntN(len(paths))], rng.IntN(3) == 0, rng.IntN(3)}
			remove := ed.Remove
			if k.exact {
				remove = ed.RemoveExact
			}
			if _, in := want[k]; in && rng.IntN(2) == 0 {
				if !remove(k.host, k.path, k.priority) {
					t.Fatalf("step %d: Remove(%v) found nothing", step, k)
				}
				delete(want, k)
				continue
			}
			v := step*10 + rng.IntN(10)
			err := insert(ed.Insert, ed.InsertExact, k, v)
			if _, in := want[k]; in {
				if !errors.Is(err, ErrConflict) {
					t.Fatalf("step %d: Insert(%v) over an existing route: %v, want ErrConflict", step, k, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: Insert(%v): %v", step, k, err)
			}
			want[k] = v
		}
		next := ed.Build()
		if got := snapshotOf(table, probeHosts, probes); !reflect.DeepEqual(got, before) {
			t.Fatalf("step %d: Edit changed the table it started from", step)
		}
		b := NewBuilder[int]()
		for k, v := range want {
			if err := insert(b.Insert, b.InsertExact, k, v); err != nil {
				t.Fatal(err)
			}
		}
		if got, fresh := snapshotOf(next, probeHosts, probes), snapshotOf(b.Build(), probeHosts, probes); !reflect.DeepEqual(got, fresh) {
			t.Fatalf("step %d: edited table differs from a built one:\nedited %v\nbuilt  %v", step, got, fresh)
		}
		table, routes = next, want
	}
}

// snapshotOf is everything a table answers: lookups, listing, length.
func snapshotOf(t *Table[int], hosts, paths []string) []string {
	var out []string
	for _, h := range hosts {
		for _, p := range paths {
			v, m, ok := t.Lookup(h, p)
			out = append(out, fmt.Sprintf("%s%s -> %v %v %v", h, p, v, m, ok))
		}
	}
	out = append(out, fmt.Sprintf("len %d routes %v", t.Len(), t.Routes()))
	return out
}

func TestEditErrors(t *testing.T) {
	b := NewBuilder[int]()
	if err := b.Insert("a.org", "/", 0, 1); err != nil {
		t.Fatal(err)
	}
	base := b.Build()
	ed := base.Edit()
	if err := ed.Insert("a_b.org", "/", 0, 2); !errors.Is(err, ErrInvalidHost) {
		t.Errorf("invalid host: %v", err)
	}
	if err := ed.Insert("a.org", "api", 0, 2); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("invalid path: %v", err)
	}
	if err := ed.Insert("A.org.", "/", 0, 2); !errors.Is(err, ErrConflict) {
		t.Errorf("conflict with the base: %v", err)
	}
	if ed.Remove("b.org", "/", 0) || ed.Remove("a_b.org", "/", 0) {
		t.Error("Remove of a route that is not there reported one")
	}
	if !ed.Remove("A.ORG", "/", 0) {
		t.Error("Remove does not normalise the host")
	}
	if err := ed.Insert("a.org", "/", 0, 3); err != nil {
		t.Errorf("insert after remove: %v", err)
	}
	if same := base.Edit().Build(); same != base {
		t.Error("an edit that changes nothing returns a new table")
	}
	next := ed.Build()
	if err := ed.Insert("c.org", "/", 0, 1); !errors.Is(err, ErrBuilt) {
		t.Errorf("insert after Build: %v", err)
	}
	if v, _, _ := next.Lookup("a.org", "/"); v != 3 {
		t.Errorf("edited value %d, want 3", v)
	}
	if v, _, _ := base.Lookup("a.org", "/"); v != 1 {
		t.Errorf("base value %d, want 1", v)
	}
}

// TestEditExact: an editor adds and removes exact routes beside the prefix
// routes of the same path, and each kind is removed by its own call only.
func TestEditExact(t *testing.T) {
	b := NewBuilder[string]()
	if err := b.Insert("a.org", "/health", 0, "prefix"); err != nil {
		t.Fatal(err)
	}
	base := b.Build()

	ed := base.Edit()
	if err := ed.InsertExact("a.org", "/health", 0, "exact"); err != nil {
		t.Fatalf("exact beside the prefix of the same path: %v", err)
	}
	if err := ed.InsertExact("A.org.", "/health", 0, "again"); !errors.Is(err, ErrConflict) {
		t.Errorf("the same exact route twice: %v", err)
	}
	if err := ed.InsertExact("a.org", "/x?y", 0, "bad"); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("invalid exact path: %v", err)
	}
	withExact := ed.Build()
	for _, c := range []struct{ path, want string }{
		{"/health", "exact"}, {"/health/x", "prefix"}, {"/healthz", ""},
	} {
		if v, m, ok := withExact.Lookup("a.org", c.path); v != c.want || ok != (c.want != "") || ok && m.Exact != (c.want == "exact") {
			t.Errorf("with the exact route, Lookup(%q) = %q %+v %v, want %q", c.path, v, m, ok, c.want)
		}
	}
	if withExact.Len() != 2 || len(withExact.Routes()) != 2 || base.Len() != 1 {
		t.Errorf("Len %d, Routes %d, base Len %d; want 2, 2, 1", withExact.Len(), len(withExact.Routes()), base.Len())
	}

	ed = withExact.Edit()
	if ed.RemoveExact("a.org", "/health", 1) || ed.RemoveExact("a.org", "/health/", 0) {
		t.Error("RemoveExact of an exact route that is not there reported one")
	}
	if !ed.Remove("a.org", "/health", 0) {
		t.Fatal("Remove of the prefix route found nothing")
	}
	prefixGone := ed.Build()
	if v, m, ok := prefixGone.Lookup("a.org", "/health"); !ok || v != "exact" || !m.Exact {
		t.Errorf("exact route after the prefix one left: %q %+v %v", v, m, ok)
	}
	if _, _, ok := prefixGone.Lookup("a.org", "/health/x"); ok {
		t.Error("/health/x is served once the prefix route left")
	}

	ed = prefixGone.Edit()
	if ed.Remove("a.org", "/health", 0) {
		t.Error("Remove took the exact route out")
	}
	if !ed.RemoveExact("a.org", "/health", 0) {
		t.Fatal("RemoveExact found nothing")
	}
	if err := ed.InsertExact("a.org", "/docs/", 0, "docs"); err != nil {
		t.Fatal(err)
	}
	last := ed.Build()
	if _, _, ok := last.Lookup("a.org", "/health"); ok || last.Len() != 1 {
		t.Errorf("after RemoveExact: /health served %v, Len %d", ok, last.Len())
	}
	if v, _, ok := last.Lookup("a.org", "/docs/"); !ok || v != "docs" {
		t.Errorf("exact /docs/ = %q %v", v, ok)
	}
	if _, _, ok := last.Lookup("a.org", "/docs"); ok {
		t.Error("exact /docs/ serves /docs")
	}
}
