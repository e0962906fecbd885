// Package router is the edge's immutable host+path routing table (exact
// hosts, then the longest "*." wildcard suffix, then the default backend, and
// within a host the longest path prefix on a segment boundary) and the one
// authority on route host and path syntax (ParseHost, ParsePath, CheckPath),
// which the label parser and every other caller share.
//
// A Builder validates routes from untrusted labels with those functions and
// returns errors, never panics; the Table it builds is read-only, safe for
// concurrent use, and its Lookup allocates nothing.
package router

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors returned by Builder.Insert, wrapped with the offending value.
var (
	ErrInvalidHost = errors.New("invalid host")
	ErrInvalidPath = errors.New("invalid path")
	ErrConflict    = errors.New("route already exists")
	ErrBuilt       = errors.New("builder already built")
)

// Match tells which route a lookup found: the host pattern as stored
// ("app.example.org", "*.example.org", or "" for the default backend) and the
// normalised path prefix ("/api", "/").
type Match struct {
	Host, Path string
}

// Entry is one inserted route, for listings such as the admin API.
type Entry[V any] struct {
	Host     string // normalised host pattern; "" is the default backend
	Path     string // normalised path prefix
	Priority int
	Value    V
	Shadowed bool // a route with the same host and path has a higher priority
}

// tree is the path radix tree of one host pattern.
type tree[V any] struct {
	host   string // pattern reported in Match.Host
	root   *node[V]
	routes int // paths with a route: what the tree adds to Table.Len
}

// Table is an immutable routing table. The zero value is not usable; build
// one with a Builder. All methods are safe for concurrent use.
type Table[V any] struct {
	exact map[string]*tree[V] // "app.example.org"
	wild  map[string]*tree[V] // ".example.org" for "*.example.org"
	def   *tree[V]            // "" (default backend); nil if none

	// minWild and maxWild bound the lengths of wild's keys, so that a
	// lookup skips probes that cannot hit.
	minWild, maxWild int

	active  int        // routes that Lookup can return
	entries []Entry[V] // every inserted route, sorted for Routes
}

// Builder collects routes for one Table. It is not safe for concurrent use
// and must not be used after Build.
type Builder[V any] struct {
	t    *Table[V]
	seen map[routeKey]struct{}
	done bool
}

// routeKey identifies an inserted route for conflict detection.
type routeKey struct {
	host, path string
	priority   int
}

// NewBuilder returns an empty Builder.
func NewBuilder[V any]() *Builder[V] {
	return &Builder[V]{
		t: &Table[V]{
			exact: make(map[string]*tree[V]),
			wild:  make(map[string]*tree[V]),
		},
		seen: make(map[routeKey]struct{}),
	}
}

// Insert adds a route. host is a pattern that ParseHost accepts (an exact
// host name, or "*.example.org" matching subdomains of any depth but not the
// apex), or "" for the default backend; it is matched without regard to case
// and may end in a dot. path is a prefix that ParsePath accepts; a trailing
// "/" other than the root is dropped, so "/api/" and "/api" are the same route.
// Errors wrap ErrInvalidHost, ErrInvalidPath, ErrConflict or ErrBuilt.
//
// The same host and path may be inserted with different priorities: the
// highest one is served and the others are only listed by Routes, marked
// Shadowed. Inserting the same host, path and priority twice is a conflict
// (callers group weighted routes into one value before inserting).
func (b *Builder[V]) Insert(host, path string, priority int, v V) error {
	if b.done {
		return fmt.Errorf("router: insert %q %q: %w", host, path, ErrBuilt)
	}
	var h string
	var wildcard bool
	if host != "" {
		var err error
		if h, wildcard, err = ParseHost(host); err != nil {
			return fmt.Errorf("router: insert: %w", err)
		}
	}
	p, err := ParsePath(path)
	if err != nil {
		return fmt.Errorf("router: insert path %q: %w", path, err)
	}
	key := routeKey{h, p, priority}
	if _, dup := b.seen[key]; dup {
		return fmt.Errorf("router: insert host %q path %q priority %d: %w", h, p, priority, ErrConflict)
	}
	b.seen[key] = struct{}{}

	t := b.t
	var tr *tree[V]
	switch {
	case h == "":
		if t.def == nil {
			t.def = &tree[V]{}
		}
		tr = t.def
	case wildcard:
		suffix := h[1:] // "*.example.org" is stored under ".example.org"
		if tr = t.wild[suffix]; tr == nil {
			tr = &tree[V]{host: h}
			t.wild[suffix] = tr
			if t.minWild == 0 || len(suffix) < t.minWild {
				t.minWild = len(suffix)
			}
			t.maxWild = max(t.maxWild, len(suffix))
		}
	default:
		if tr = t.exact[h]; tr == nil {
			tr = &tree[V]{host: h}
			t.exact[h] = tr
		}
	}

	var n *node[V]
	tr.root, n = tr.root.insert(p)
	if !n.set {
		t.active++
		tr.routes++
	}
	if !n.set || priority > n.priority {
		n.set, n.value, n.path, n.priority = true, v, p, priority
	}
	t.entries = append(t.entries, Entry[V]{Host: h, Path: p, Priority: priority, Value: v})
	return nil
}

// Build returns the table. The builder must not be used afterwards; further
// Inserts return ErrBuilt and further Builds return the same table.
func (b *Builder[V]) Build() *Table[V] {
	t := b.t
	if b.done {
		return t
	}
	b.done, b.seen = true, nil
	for i := range t.entries {
		e := &t.entries[i]
		e.Shadowed = e.Priority < t.tree(e.Host).root.lookup(e.Path).priority
	}
	slices.SortFunc(t.entries, func(a, b Entry[V]) int {
		return cmp.Or(
			strings.Compare(a.Host, b.Host),
			strings.Compare(a.Path, b.Path),
			cmp.Compare(b.Priority, a.Priority), // highest first
		)
	})
	return t
}

// tree returns the tree of a normalised host pattern.
func (t *Table[V]) tree(pattern string) *tree[V] {
	switch {
	case pattern == "":
		return t.def
	case pattern[0] == '*':
		return t.wild[pattern[1:]]
	default:
		return t.exact[pattern]
	}
}

// Lookup finds the route for a request. host is the Host header or SNI name:
// it may carry a port ("a.org:8080", "[::1]:80"), any case and a trailing dot.
// path is the request path, already cleaned by the caller; "" counts as "/",
// and a path that does not start with "/" (such as "*") matches only the
// root route "/".
//
// The exact host is tried first, then wildcards from the longest suffix to
// the shortest, then the default backend: if a host's tree has no route for
// the path, the lookup falls through to the next one. ok is false when no
// route matches (a 404). Lookup allocates nothing.
func (t *Table[V]) Lookup(host, path string) (v V, m Match, ok bool) {
	if path == "" || path[0] != '/' {
		path = "/"
	}
	var buf [maxHostLen]byte
	if h, valid := canonicalHost(&buf, host); valid {
		if tr := t.exact[string(h)]; tr != nil {
			if n := tr.root.lookup(path); n != nil {
				return n.value, Match{tr.host, n.path}, true
			}
		}
		if len(t.wild) > 0 {
			// Probe every suffix that starts at a label boundary, from
			// the longest to the shortest. Index 0 is skipped: a wildcard
			// needs a non-empty label in front of its suffix.
			for i := 1; i < len(h); i++ {
				if h[i] != '.' {
					continue
				}
				s := h[i:]
				if len(s) < t.minWild {
					break
				}
				if len(s) > t.maxWild {
					continue
				}
				if tr := t.wild[string(s)]; tr != nil {
					if n := tr.root.lookup(path); n != nil {
						return n.value, Match{tr.host, n.path}, true
					}
				}
			}
		}
	}
	if t.def != nil {
		if n := t.def.root.lookup(path); n != nil {
			return n.value, Match{"", n.path}, true
		}
	}
	return v, m, false
}

// Len returns the number of routes that Lookup can return: inserted routes
// less those shadowed by a higher priority on the same host and path.
func (t *Table[V]) Len() int { return t.active }

// Routes returns every inserted route, shadowed ones included, sorted by
// host pattern, path, then priority from highest to lowest. It allocates a
// new slice on each call and is meant for listings, not the request path.
func (t *Table[V]) Routes() []Entry[V] {
	return slices.Clone(t.entries)
}

// canonicalHost writes the lower-cased host name of a Host header into buf,
// without port or trailing dot, and returns it. valid is false for an IPv6
// literal, an empty name, or a name longer than any route can be; such hosts
// only reach the default backend. The fixed buffer lets Lookup lower-case
// without allocating: map lookups keyed by string(bytes) do not copy.
func canonicalHost(buf *[maxHostLen]byte, host string) (h []byte, valid bool) {
	if strings.HasPrefix(host, "[") {
		return nil, false // IPv6 literal; routes name hosts, not addresses
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > maxHostLen {
		return nil, false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(host)], true
}
