package router

import (
	"math/bits"
	"strings"
)

// flatTree is the form of one host's path tree that Lookup walks: the nodes
// of the radix tree (tree.go) and every byte a walk compares, in one string.
// Each node is one run of bytes (its header, its prefix, its children's first
// bytes and where they are), laid out depth first, so that a walk reads
// forward through a few adjacent cache lines instead of following pointers
// to nodes, prefixes, index strings and child slices spread over the heap,
// and the garbage collector has no pointers in it to scan.
type flatTree[V any] struct {
	// bytes is, in this order: the host pattern (Match.Host, read first
	// by the hostMap probe); from offset base, the nodes, the root's
	// first, each before its children's subtrees (depth first, children
	// in order); and flatPad bytes of padding, so that a walk may read
	// eight bytes from anywhere in a node. Without nodes, bytes is the
	// host pattern alone.
	bytes  string
	base   uint32
	routes []flatRoute[V] // empty if the tree has no nodes
}

// A node, little-endian, at its offset o:
//
//	[o:o+4]   the routes that end here: 0 for none, else the index in routes
//	          of the first (routeIndex) and flags for which are there:
//	          routeExact (it is an exact route) and routePrefix (a prefix
//	          route, the first or the one after the exact route)
//	[o+4:o+6] length p of the prefix (at most maxPathLen)
//	[o+6:o+8] number k of children (at most 256, one per byte)
//	then      the prefix (p bytes), the first byte of each child's prefix
//	          (k bytes), and the offset of each child (k times 4 bytes), in
//	          the same order
const (
	nodeHeader = 8
	flatPad    = 8
)

// The route word of a node.
const (
	routeExact  = 1 << 31
	routePrefix = 1 << 30
	routeIndex  = routePrefix - 1
)

// flatRoute is a route that ends at a node: its value and its whole path,
// reported in Match.Path. Whether it is exact is in the node's route word
// (and in what walk returns), not here, so that a table's routes take no
// more memory than they did before exact routes.
type flatRoute[V any] struct {
	value V
	path  string
}

// flatten lays out the tree rooted at root (nil: no routes) for host
// pattern host, with one allocation for the bytes and one for the routes.
func flatten[V any](host string, root *node[V]) (f flatTree[V]) {
	f.base = uint32(len(host))
	if root == nil {
		f.bytes = host
		return f
	}
	// Number the nodes depth first (order) and note, for each, where the
	// order numbers of its children start in kids.
	var smallNodes [32]*node[V]
	var smallInts [3][32]int
	order, kids, kidsAt := smallNodes[:0], smallInts[0][:0], smallInts[1][:0]
	routes := 0
	var visit func(n *node[V]) int
	visit = func(n *node[V]) int {
		i := len(order)
		order = append(order, n)
		kidsAt = append(kidsAt, len(kids))
		at := len(kids)
		for range n.children {
			kids = append(kids, 0)
		}
		for j, c := range n.children {
			kids[at+j] = visit(c)
		}
		if n.exact.set {
			routes++
		}
		if n.route.set {
			routes++
		}
		return i
	}
	visit(root)
	offset := smallInts[2][:0]
	at := len(host)
	for _, n := range order {
		offset = append(offset, at)
		at += nodeHeader + len(n.prefix) + 5*len(n.children)
	}

	f.routes = make([]flatRoute[V], 0, routes)
	var sb strings.Builder
	sb.Grow(at + flatPad)
	sb.WriteString(host)
	for i, n := range order {
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
		var h [nodeHeader]byte
		put32(h[0:], word)
		put16(h[4:], uint16(len(n.prefix)))
		put16(h[6:], uint16(len(n.children)))
		sb.Write(h[:])
		sb.WriteString(n.prefix)
		sb.WriteString(n.indices)
		for _, k := range kids[kidsAt[i] : kidsAt[i]+len(n.children)] {
			var o [4]byte
			put32(o[:], uint32(offset[k]))
			sb.Write(o[:])
		}
	}
	var pad [flatPad]byte
	sb.Write(pad[:])
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

// walk walks the flat bytes b of a tree whose root starts at base and
// returns 1 + the index in routes of the route that path takes, or 0: the
// exact route of the node where path ends (with routeExact set), else the
// longest prefix route that is a prefix of path on a segment boundary. The
// root route "/" ends on a boundary by definition; it is the only route
// whose walk has consumed one byte. It allocates nothing. A node costs one
// read of its header and, for a prefix of up to eight bytes and up to eight
// children, one comparison of eight bytes of the path with the prefix and
// one search of eight first bytes, without loops or calls.
func walk(b string, base uint32, path string) uint32 {
	if int(base) == len(b) { // no nodes
		return 0
	}
	// short holds a path of fewer than eight bytes, which cannot be read
	// eight bytes at a time.
	var short uint64
	if len(path) < 8 {
		short = word(path)
	}
	best := uint32(0)
	rest := path
	at := int(base) // offset of the current node
	for {
		hdr := get64(b[at : at+8])
		plen, k := int(hdr>>32)&0xffff, int(hdr>>48)
		at += nodeHeader
		if plen > len(rest) {
			break
		}
		if plen <= 8 {
			// The next eight bytes of the path (fewer at its end,
			// padded with zeros), against the prefix.
			var w uint64
			switch {
			case len(rest) >= 8:
				w = get64(rest[:8])
			case len(path) >= 8:
				w = get64(path[len(path)-8:]) >> (64 - 8*len(rest))
			default:
				w = short >> (8 * (len(path) - len(rest)))
			}
			if (w^get64(b[at:at+8]))&(1<<(8*plen)-1) != 0 {
				break
			}
		} else if !hasPrefix(rest, b[at:at+plen]) {
			break
		}
		rest = rest[plen:]
		route := uint32(hdr)
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
		firsts := at + plen
		kid := -1
		if k <= 8 {
			w := get64(b[firsts:firsts+8]) ^ uint64(rest[0])*ones // a byte equal to rest[0] becomes 0
			// The high bit of each zero byte among the first k.
			if z := zeroBytes(w) & (1<<(8*k) - 1); z != 0 {
				kid = bits.TrailingZeros64(z) / 8
			}
		} else {
			kid = strings.IndexByte(b[firsts:firsts+k], rest[0])
		}
		if kid < 0 {
			break
		}
		o := firsts + k + 4*kid
		at = int(get32(b[o : o+4]))
	}
	return best
}

// word returns the bytes of s, shorter than eight, as a little-endian word
// padded with zeros, in at most two reads that may overlap instead of a
// loop by byte.
func word(s string) uint64 {
	n := len(s)
	switch {
	case n >= 4:
		return uint64(get32(s[:4])) | uint64(get32(s[n-4:n]))<<(8*(n-4))
	case n > 0:
		return uint64(s[0]) | uint64(s[n>>1])<<(8*(n>>1)) | uint64(s[n-1])<<(8*(n-1))
	}
	return 0
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
