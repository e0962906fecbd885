package control

import (
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// clientState is an edge's copy of the control plane's state, kept so that a
// delta costs the edge what it changed: its items by key, their keys and
// sums in key order (the version), and the routes and label errors of the
// last Config built, which the next one copies and patches rather than
// assembles from every item.
type clientState struct {
	items map[string]decoded
	order []keySum // the keys of items, sorted, with their sums

	// cur holds the last Config's routes in key order; errors are its
	// label errors. full means they must be assembled anew; otherwise
	// dirty holds the route IDs (keyRoute or keyEndpoints changed) and
	// errorsDirty whether a keyErrors item changed since.
	cur         routeBuf
	errors      []*route.LabelError
	full        bool
	dirty       map[string]bool
	errorsDirty bool
	// recycle: the consumer reads no Config's routes once it has taken
	// the Config after it (Client.RecycleRoutes), so spare, the routes of
	// an older Config, may be patched in place into the next one instead
	// of copying cur. spare.routes is nil when there is none.
	recycle bool
	spare   routeBuf
	// gen is the Gen of the last Config built, which the next one's Delta
	// starts from.
	gen uint64
}

// routeBuf is the routes of one Config, in key order, with their keys.
type routeBuf struct {
	routes []route.Route
	keys   []string
	// stale are the route IDs whose entry may differ from the state's
	// (spare only: the changes since its Config).
	stale map[string]bool
}

type keySum struct {
	key string
	sum [sha256.Size]byte
}

// maxPatch is the largest delta applied by binary search and patch; a
// larger one re-sorts and rebuilds.
const maxPatch = 64

// newClientState returns an empty state. With recycle, Configs reuse the
// routes of the Config before last (Client.RecycleRoutes).
func newClientState(recycle bool) *clientState {
	return &clientState{items: map[string]decoded{}, full: true, recycle: recycle}
}

// reset replaces the state with a snapshot's items.
func (s *clientState) reset(items map[string]decoded) {
	s.items = items
	s.order = s.order[:0]
	for _, k := range sortedKeys(items) {
		s.order = append(s.order, keySum{k, items[k].sum})
	}
	s.full, s.dirty, s.errorsDirty = true, nil, false
}

// change applies a delta: the items set (decoded) and the keys deleted.
func (s *clientState) change(set map[string]decoded, del []string) {
	for _, k := range del {
		delete(s.items, k)
	}
	for k, d := range set {
		s.items[k] = d
	}
	if len(set)+len(del) > maxPatch {
		s.reset(s.items)
		return
	}
	find := func(k string) (int, bool) {
		return slices.BinarySearchFunc(s.order, k, func(e keySum, k string) int { return strings.Compare(e.key, k) })
	}
	for _, k := range del {
		if i, ok := find(k); ok {
			s.order = slices.Delete(s.order, i, i+1)
		}
		s.touch(k)
	}
	for k, d := range set {
		if i, ok := find(k); ok {
			s.order[i].sum = d.sum
		} else {
			s.order = slices.Insert(s.order, i, keySum{k, d.sum})
		}
		s.touch(k)
	}
}

// touch records that item k changed, for the next config.
func (s *clientState) touch(k string) {
	if s.full {
		return
	}
	switch {
	case strings.HasPrefix(k, keyRoute):
		s.dirty[k[len(keyRoute):]] = true
	case strings.HasPrefix(k, keyEndpoints):
		s.dirty[k[len(keyEndpoints):]] = true
	case strings.HasPrefix(k, keyErrors):
		s.errorsDirty = true
	}
}

// version is the state's version, as the server computes it (versionOf).
func (s *clientState) version() string {
	return versionOfSums(len(s.order), func(i int) [sha256.Size]byte { return s.order[i].sum })
}

// config returns the Config of the state: what buildConfig assembles,
// patched from the last one where the state changed by a small delta. Its
// routes slice is not the last Config's: the Config handed out before is
// read-only and stays as it was. It is a copy of the last one's, patched;
// with recycle, the routes of the Config before that, patched in place for
// what changed since (the first delta after a full build copies, to make
// the second buffer). A delta that changed no route (label errors only)
// shares the routes of the last. Every Config gets a new random Gen, and
// a patched one a Delta from the last: the IDs of the routes the patch
// replaced, inserted or deleted, so that the edge compares only those.
func (s *clientState) config(changed time.Time) route.Config {
	gen := rand.Uint64() | 1 // not zero
	if s.full {
		keys := make([]string, len(s.order))
		for i := range s.order {
			keys[i] = s.order[i].key
		}
		cfg := buildConfig(s.items, keys, changed)
		s.cur = routeBuf{routes: cfg.Routes, keys: keys[:0:0]}
		for _, k := range keys {
			if s.items[k].route != nil {
				s.cur.keys = append(s.cur.keys, k)
			}
		}
		s.errors = cfg.Errors
		s.spare = routeBuf{}
		s.full, s.dirty, s.errorsDirty = false, map[string]bool{}, false
		s.gen, cfg.Gen = gen, gen
		return cfg
	}
	delta := &route.Delta{From: s.gen}
	if len(s.dirty) > 0 {
		// The Delta names each dirty route's ID in the last Config and in
		// this one.
		for id := range s.dirty {
			k := keyRoute + id
			i, in := slices.BinarySearch(s.cur.keys, k)
			if in {
				delta.Routes = append(delta.Routes, s.cur.routes[i].ID())
			}
			if d, ok := s.items[k]; ok && d.route != nil && (!in || d.route.ID() != s.cur.routes[i].ID()) {
				delta.Routes = append(delta.Routes, d.route.ID())
			}
		}
		next := s.spare
		if next.routes == nil {
			// The copy is the one cost of a delta that grows with the
			// routes: a Config handed out is read-only, and its readers
			// (the status page, the table in force) may still be reading
			// it. With recycle it is made once, for the second buffer.
			next = routeBuf{routes: slices.Clone(s.cur.routes), keys: s.cur.keys}
			if s.recycle {
				next.keys = slices.Clone(s.cur.keys)
			}
		}
		for id := range next.stale {
			s.patch(&next, id)
		}
		for id := range s.dirty {
			if !next.stale[id] {
				s.patch(&next, id)
			}
		}
		clear(next.stale)
		if s.recycle {
			// The last Config's routes become the spare, behind the
			// state by this delta.
			s.spare = s.cur
			if s.spare.stale == nil {
				s.spare.stale = make(map[string]bool, len(s.dirty))
			}
			for id := range s.dirty {
				s.spare.stale[id] = true
			}
		}
		s.cur = next
	}
	if s.errorsDirty {
		s.errors = nil
		i, _ := slices.BinarySearchFunc(s.order, keyErrors, func(e keySum, k string) int { return strings.Compare(e.key, k) })
		for ; i < len(s.order) && strings.HasPrefix(s.order[i].key, keyErrors); i++ {
			s.errors = append(s.errors, s.items[s.order[i].key].errors...)
		}
	}
	clear(s.dirty)
	s.errorsDirty = false
	s.gen = gen
	return route.Config{Routes: s.cur.routes, Errors: s.errors, Changed: changed, Gen: gen, Delta: delta}
}

// patch brings the entry of route id in b to the state: replaced, inserted
// or deleted.
func (s *clientState) patch(b *routeBuf, id string) {
	k := keyRoute + id
	i, in := slices.BinarySearch(b.keys, k)
	d, ok := s.items[k]
	switch {
	case ok && d.route != nil:
		r := *d.route
		r.Endpoints = s.items[keyEndpoints+id].endpoints
		if in {
			b.routes[i] = r
		} else {
			b.routes = slices.Insert(b.routes, i, r)
			b.keys = slices.Insert(b.keys, i, k)
		}
	case in:
		b.routes = slices.Delete(b.routes, i, i+1)
		b.keys = slices.Delete(b.keys, i, i+1)
	}
}
