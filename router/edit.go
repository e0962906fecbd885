package router

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Editor derives a new Table from one in force: it removes and inserts a few
// routes and shares everything else with the table it started from, so that
// one change costs the hosts it touches, not the whole table. The table it
// started from is never modified. An Editor is not safe for concurrent use
// and must not be used after Build.
type Editor[V any] struct {
	base *Table[V]
	del  map[routeKey]bool // removed routes of base
	add  []Entry[V]        // inserted routes, in insertion order
	// added are the keys of add, for conflict detection.
	added map[routeKey]bool
	done  bool
}

// Edit returns an Editor that starts from t's routes.
func (t *Table[V]) Edit() *Editor[V] {
	return &Editor[V]{base: t, del: map[routeKey]bool{}, added: map[routeKey]bool{}}
}

// normalise validates a route's host and path as Insert (exact false) or
// InsertExact does and returns its key and whether the host is a wildcard.
func normalise(host, path string, exact bool, priority int) (routeKey, bool, error) {
	var h string
	var wildcard bool
	if host != "" {
		var err error
		if h, wildcard, err = ParseHost(host); err != nil {
			return routeKey{}, false, fmt.Errorf("router: insert: %w", err)
		}
	}
	parse := ParsePath
	if exact {
		parse = ParseExactPath
	}
	p, err := parse(path)
	if err != nil {
		return routeKey{}, false, fmt.Errorf("router: insert %s %q: %w", pathKind(exact), path, err)
	}
	return routeKey{h, p, exact, priority}, wildcard, nil
}

// find returns the index of the entry of k in entries (sorted as Routes
// sorts them) and whether it is there.
func find[V any](entries []Entry[V], k routeKey) (int, bool) {
	return slices.BinarySearchFunc(entries, k, func(e Entry[V], k routeKey) int {
		return compareEntryKey(e.Host, e.Path, e.Exact, e.Priority, k)
	})
}

// compareEntryKey orders routes as Routes lists them: by host, path, the
// exact route before the prefix route, then priority from highest to lowest.
func compareEntryKey(host, path string, exact bool, priority int, k routeKey) int {
	return cmp.Or(strings.Compare(host, k.host), strings.Compare(path, k.path),
		compareExact(exact, k.exact), cmp.Compare(k.priority, priority))
}

// compareExact orders exact before prefix.
func compareExact(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// Remove takes the prefix route of host, path and priority out (inserted in
// the table the editor started from, or by this editor). It reports whether
// there was such a route. host and path are read as Insert reads them.
func (e *Editor[V]) Remove(host, path string, priority int) bool {
	return e.remove(host, path, false, priority)
}

// RemoveExact takes the exact route of host, path and priority out, as
// Remove does prefix routes. host and path are read as InsertExact reads
// them.
func (e *Editor[V]) RemoveExact(host, path string, priority int) bool {
	return e.remove(host, path, true, priority)
}

func (e *Editor[V]) remove(host, path string, exact bool, priority int) bool {
	if e.done {
		return false
	}
	k, _, err := normalise(host, path, exact, priority)
	if err != nil {
		return false
	}
	if e.added[k] {
		delete(e.added, k)
		e.add = slices.DeleteFunc(e.add, func(x Entry[V]) bool { return keyOf(x) == k })
		return true
	}
	if _, ok := find(e.base.entries, k); ok && !e.del[k] {
		e.del[k] = true
		return true
	}
	return false
}

// keyOf is an entry's key.
func keyOf[V any](x Entry[V]) routeKey { return routeKey{x.Host, x.Path, x.Exact, x.Priority} }

// Insert adds a prefix route, as Builder.Insert does: the same validation,
// the same errors. A route that the editor removed may be inserted again,
// with a new value.
func (e *Editor[V]) Insert(host, path string, priority int, v V) error {
	return e.insert(host, path, false, priority, v)
}

// InsertExact adds an exact route, as Builder.InsertExact does.
func (e *Editor[V]) InsertExact(host, path string, priority int, v V) error {
	return e.insert(host, path, true, priority, v)
}

func (e *Editor[V]) insert(host, path string, exact bool, priority int, v V) error {
	if e.done {
		return fmt.Errorf("router: insert %q %q: %w", host, path, ErrBuilt)
	}
	k, _, err := normalise(host, path, exact, priority)
	if err != nil {
		return err
	}
	_, inBase := find(e.base.entries, k)
	if e.added[k] || inBase && !e.del[k] {
		return fmt.Errorf("router: insert host %q %s %q priority %d: %w", k.host, pathKind(exact), k.path, k.priority, ErrConflict)
	}
	e.added[k] = true
	e.add = append(e.add, Entry[V]{Host: k.host, Path: k.path, Exact: exact, Priority: priority, Value: v})
	return nil
}

// Build returns the new table. The trees of the hosts the editor touched
// are built anew; every other host's tree is the one the table it started
// from has.
func (e *Editor[V]) Build() *Table[V] {
	base := e.base
	if e.done || len(e.del) == 0 && len(e.add) == 0 {
		e.done = true
		return base
	}
	e.done = true

	// The entries: base's less the removed, merged with the added, in order.
	add := slices.Clone(e.add)
	slices.SortFunc(add, func(a, b Entry[V]) int {
		return compareEntryKey(a.Host, a.Path, a.Exact, a.Priority, keyOf(b))
	})
	// Copy base's entries in runs between the removed ones and the places
	// the added ones go, rather than entry by entry.
	type cut struct {
		at  int  // index in base.entries
		del bool // remove the entry at at; else insert the next added one before it
	}
	cuts := make([]cut, 0, len(e.del)+len(add))
	for k := range e.del {
		i, _ := find(base.entries, k)
		cuts = append(cuts, cut{i, true})
	}
	for _, x := range add {
		i, _ := find(base.entries, keyOf(x))
		cuts = append(cuts, cut{i, false})
	}
	// At one index an insertion comes before the removal (the added entry
	// sorts before the removed one it replaces, or equals it), and
	// insertions keep the order of add.
	slices.SortStableFunc(cuts, func(a, b cut) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		switch {
		case a.del == b.del:
			return 0
		case a.del:
			return 1
		}
		return -1
	})
	entries := make([]Entry[V], 0, len(base.entries)-len(e.del)+len(add))
	from, next := 0, 0
	for _, c := range cuts {
		entries = append(entries, base.entries[from:c.at]...)
		from = c.at
		if c.del {
			from++
		} else {
			entries = append(entries, add[next])
			next++
		}
	}
	entries = append(entries, base.entries[from:]...)

	touched := map[string]bool{}
	for k := range e.del {
		touched[k.host] = true
	}
	for _, x := range add {
		touched[x.Host] = true
	}
	t := &Table[V]{exact: base.exact, wild: base.wild, def: base.def, active: base.active, entries: entries}
	var exactCopied, wildCopied bool
	for h := range touched {
		if old := base.tree(h); old != nil {
			t.active -= old.routes
		}
		tr := buildTree(h, entries)
		if tr != nil {
			t.active += tr.routes
		}
		switch {
		case h == "":
			t.def = tr
		case h[0] == '*':
			if !wildCopied {
				t.wild, wildCopied = base.wild.clone(), true
			}
			if tr == nil {
				t.wild.del(h[1:])
			} else {
				t.wild.set(tr)
			}
		default:
			if !exactCopied {
				t.exact, exactCopied = base.exact.clone(), true
			}
			if tr == nil {
				t.exact.del(h)
			} else {
				t.exact.set(tr)
			}
		}
	}
	return t
}

// buildTree builds the tree of host pattern h from its entries (a run of
// entries, sorted, highest priority first within a path and kind) and marks
// them shadowed or not; nil if h has no entries.
func buildTree[V any](h string, entries []Entry[V]) *tree[V] {
	lo, _ := slices.BinarySearchFunc(entries, h, func(e Entry[V], h string) int { return strings.Compare(e.Host, h) })
	hi := lo
	for hi < len(entries) && entries[hi].Host == h {
		hi++
	}
	if lo == hi {
		return nil
	}
	tr := newTree[V](h)
	for j := lo; j < hi; j++ {
		x := &entries[j]
		var n *node[V]
		tr.root, n = tr.root.insert(x.Path)
		l := n.leaf(x.Exact)
		x.Shadowed = l.set // a higher priority of the same path and kind came first
		if !l.set {
			*l = leaf[V]{true, x.Value, x.Priority}
			n.path = x.Path
			tr.routes++
		}
	}
	tr.compile()
	return tr
}
