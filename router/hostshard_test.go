package router

import (
	"fmt"
	"testing"
)

// TestHostMapCloneSharesShards checks that clones of a map share its shards
// until they change one: a change to one host copies that host's shard
// only, and neither the map nor another clone of it sees the change (sets,
// replacements and deletions), as two Editors of one table need.
func TestHostMapCloneSharesShards(t *testing.T) {
	m := newHostMap[int](0)
	trees := map[string]*tree[int]{}
	for i := range 2000 {
		k := fmt.Sprintf("h%d.example.org", i)
		tr := newTree[int](k)
		tr.compile()
		m.set(tr)
		trees[k] = tr
	}
	c := m.clone()
	k := "h7.example.org"
	repl := newTree[int](k)
	repl.compile()
	c.set(repl)
	shared := 0
	for j := range m.shards {
		if len(m.shards[j].slots) > 0 && &m.shards[j].slots[0] == &c.shards[j].slots[0] {
			shared++
		}
	}
	if shared != hostShards-1 {
		t.Errorf("%d shards shared after one change, want %d", shared, hostShards-1)
	}
	c.del("h8.example.org")
	d := m.clone()
	extra := newTree[int]("new.example.org")
	extra.compile()
	d.set(extra)
	d.del("h9.example.org")

	if m.lookup(k) != trees[k] || d.lookup(k) != trees[k] {
		t.Errorf("the clone's replacement of %s shows in the map or the other clone", k)
	}
	if c.lookup(k) != repl {
		t.Errorf("the clone lost its replacement of %s", k)
	}
	if m.lookup("h8.example.org") == nil || d.lookup("h8.example.org") == nil || c.lookup("h8.example.org") != nil {
		t.Error("a deletion in a clone is not the clone's alone")
	}
	if m.lookup("new.example.org") != nil || c.lookup("new.example.org") != nil || d.get("NEW.example.org") == nil {
		t.Error("a set in a clone is not the clone's alone")
	}
	if m.lookup("h9.example.org") == nil || c.lookup("h9.example.org") == nil || d.lookup("h9.example.org") != nil {
		t.Error("a deletion in a clone is not the clone's alone")
	}
	if m.n != 2000 || c.n != 1999 || d.n != 2000 {
		t.Errorf("n = %d, %d and %d, want 2000, 1999 and 2000", m.n, c.n, d.n)
	}
	for i := range 2000 {
		k := fmt.Sprintf("h%d.example.org", i)
		if k == "h7.example.org" || k == "h8.example.org" || k == "h9.example.org" {
			continue
		}
		if m.get(k) == nil || c.get(k) == nil || d.get(k) == nil || m.get(k).tr != c.get(k).tr || m.get(k).tr != d.get(k).tr {
			t.Fatalf("%s is not in all three", k)
		}
	}
}
