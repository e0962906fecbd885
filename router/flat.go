package router

import "strings"

// flatTree is the form of one host's path tree that Lookup walks: the nodes
// of the radix tree (tree.go) and every byte a walk compares, in one string,
// a node's children next to each other. A walk follows offsets within a few
// adjacent cache lines instead of pointers to nodes, prefixes, index strings
// and child slices spread over the heap, and the garbage collector has no
// pointers in it to scan.
type flatTree[V any] struct {
	// bytes is, in this order: the host pattern (Match.Host, read first
	// by the hostMap probe); from offset base, one record of recordLen
	// bytes per node, the root's first, in breadth-first order; and each
	// node's prefix followed by the first byte of each of its children.
	bytes  string
	base   uint32
	routes []flatRoute[V] // empty if the tree has no nodes
}

// A node's record, little-endian:
//
//	[0:4]   offset in bytes of its prefix; the children's first bytes follow it
//	[4:6]   length of the prefix (at most maxPathLen)
//	[6:8]   number of children (at most 256, one per byte)
//	[8:12]  index of the first child; the others follow it
//	[12:16] the routes that end here: 0 for none, else the index in routes
//	        of the first (routeIndex) and flags for which are there:
//	        routeExact (it is an exact route) and routePrefix (a prefix
//	        route, the first or the one after the exact route)
const recordLen = 16

// The [12:16] word of a node record.
const (
	routeExact  = 1 << 31
	routePrefix = 1 << 30
	routeIndex  = routePrefix - 1
)

// flatRoute is a route that ends at a node: its value and its whole path,
// reported in Match.Path. Whether it is exact is in the node's record (and
// in what walk returns), not here, so that a table's routes take no more
// memory than they did before exact routes.
type flatRoute[V any] struct {
	value V
	path  string
}

// flatten lays out the tree rooted at root (nil: no routes) for host
// pattern host, with one allocation for the bytes and one for the routes.
func flatten[V any](host string, root *node[V]) (f flatTree[V]) {
	var small [32]*node[V]
	nodes := small[:0]
	if root != nil {
		nodes = append(nodes, root)
	}
	size, routes := len(host), 0
	for i := 0; i < len(nodes); i++ { // breadth-first: children are contiguous
		n := nodes[i]
		nodes = append(nodes, n.children...)
		size += recordLen + len(n.prefix) + len(n.indices)
		if n.exact.set {
			routes++
		}
		if n.route.set {
			routes++
		}
	}
	f.base = uint32(len(host))
	f.routes = make([]flatRoute[V], 0, routes)
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteString(host)
	at := len(host) + recordLen*len(nodes) // where the next prefix goes
	next := 1                              // index of the first child of the next node with children
	for _, n := range nodes {
		var r [recordLen]byte
		put32(r[0:], uint32(at))
		put16(r[4:], uint16(len(n.prefix)))
		put16(r[6:], uint16(len(n.children)))
		put32(r[8:], uint32(next))
		at += len(n.prefix) + len(n.indices)
		next += len(n.children)
		var word uint32
		if n.routed() {
			word = uint32(len(f.routes))
		}
		if n.exact.set {
			f.routes = append(f.routes, flatRoute[V]{n.exact.value, n.path})
			word |= routeExact
		}
		if n.route.set {
			f.routes = append(f.routes, flatRoute[V]{n.route.value, n.path})
			word |= routePrefix
		}
		put32(r[12:], word)
		sb.Write(r[:])
	}
	for _, n := range nodes {
		sb.WriteString(n.prefix)
		sb.WriteString(n.indices)
	}
	f.bytes = sb.String()
	return f
}

// lookup returns the route that path takes (the exact route of path, else
// the longest prefix route that is a prefix of path on a segment boundary)
// and whether it is exact, or nil: the answer node.lookup gives on the tree
// it was laid out from.
func (f *flatTree[V]) lookup(path string) (*flatRoute[V], bool) {
	if r := walk(f.bytes, f.base, path); r != 0 {
		return &f.routes[r&routeIndex-1], r&routeExact != 0
	}
	return nil, false
}

// walk walks the flat bytes b of a tree whose records start at base and
// returns 1 + the index in routes of the route that path takes, or 0: the
// exact route of the node where path ends (with routeExact set), else the
// longest prefix route that is a prefix of path on a segment boundary. The root route "/" ends on
// a boundary by definition; it is the only route whose walk has consumed one
// byte. It allocates nothing, and costs a table without exact routes one
// flag test per node more than it did before them.
func walk(b string, base uint32, path string) uint32 {
	if int(base) == len(b) { // no nodes
		return 0
	}
	best := uint32(0)
	rest := path
	at := base // offset of the current node's record
	for {
		r := b[at : at+recordLen]
		off, plen := get32(r[0:]), uint32(get16(r[4:]))
		end := off + plen
		if !hasPrefix(rest, b[off:end]) {
			break
		}
		rest = rest[plen:]
		route := get32(r[12:])
		if rest == "" {
			// The node's first route: its exact one if it has one,
			// which wins over its prefix one.
			if route != 0 {
				best = route&routeIndex + 1 | route&routeExact
			}
			break
		}
		if route&routePrefix != 0 && (rest[0] == '/' || len(path)-len(rest) == 1) {
			best = route&routeIndex + 1 + route>>31 // after the exact route, if any
		}
		c, kid := rest[0], -1
		firsts := b[end : end+uint32(get16(r[6:]))]
		for j := 0; j < len(firsts); j++ {
			if firsts[j] == c {
				kid = j
				break
			}
		}
		if kid < 0 {
			break
		}
		at = base + (get32(r[8:])+uint32(kid))*recordLen
	}
	return best
}

// hasPrefix is strings.HasPrefix for the short prefixes of tree nodes,
// compared eight bytes at a time without a call to memequal.
func hasPrefix(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	s = s[:len(prefix)]
	for len(prefix) >= 8 {
		if get64(s) != get64(prefix) {
			return false
		}
		s, prefix = s[8:], prefix[8:]
	}
	for i := 0; i < len(prefix); i++ {
		if s[i] != prefix[i] {
			return false
		}
	}
	return true
}

func get16(b string) uint16 { _ = b[1]; return uint16(b[0]) | uint16(b[1])<<8 }

func get32(b string) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func get64(b string) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func put16(b []byte, v uint16) { _ = b[1]; b[0], b[1] = byte(v), byte(v>>8) }

func put32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
