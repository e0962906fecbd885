package router

import "strings"

// node is one node of a path radix tree. Edges are compressed: a node's
// prefix is the run of bytes shared by everything below it, so a chain of
// single-child nodes without values never exists (the invariant test walks
// the tree to check this).
//
// Paths are prefixes, not patterns: there are no parameters or catch-alls,
// so unlike httprouter's tree there is only one kind of node.
type node[V any] struct {
	prefix   string     // edge label: bytes consumed on entering this node
	indices  string     // first byte of each child's prefix, in children's order
	children []*node[V] // one per byte of indices

	// set reports whether a route ends here; value, path and priority
	// belong to it. path is the whole normalised route path, kept so that
	// a lookup can report the match without building a string.
	set      bool
	value    V
	path     string
	priority int
}

// insert returns the node for path, creating and splitting nodes as
// needed, and the (possibly new) root. It never fails: the caller has
// validated path.
func (n *node[V]) insert(path string) (root, at *node[V]) {
	if n == nil {
		n = &node[V]{prefix: path}
		return n, n
	}
	root, cur := n, n
	for {
		l := commonPrefix(path, cur.prefix)
		if l < len(cur.prefix) {
			// Split: cur keeps the shared part and takes a single child
			// with the rest of its old prefix, children and route. The
			// caller either puts a route on cur or gives it a second
			// child, so no valueless single-child node survives.
			child := *cur
			child.prefix = cur.prefix[l:]
			*cur = node[V]{
				prefix:   cur.prefix[:l],
				indices:  child.prefix[:1],
				children: []*node[V]{&child},
			}
		}
		path = path[l:]
		if path == "" {
			return root, cur
		}
		if i := strings.IndexByte(cur.indices, path[0]); i >= 0 {
			cur = cur.children[i]
			continue
		}
		child := &node[V]{prefix: path}
		cur.indices += path[:1]
		cur.children = append(cur.children, child)
		return root, child
	}
}

// lookup returns the node of the longest route that is a prefix of path on
// a segment boundary, or nil. It walks down the tree once, remembering the
// last route that ended where path has "/" or ends; the root route "/"
// ends on a boundary by definition. It allocates nothing.
func (n *node[V]) lookup(path string) *node[V] {
	var best *node[V]
	for n != nil {
		if len(path) < len(n.prefix) || path[:len(n.prefix)] != n.prefix {
			break
		}
		path = path[len(n.prefix):]
		if n.set && (path == "" || path[0] == '/' || len(n.path) == 1) {
			best = n
		}
		if path == "" {
			break
		}
		i := strings.IndexByte(n.indices, path[0])
		if i < 0 {
			break
		}
		n = n.children[i]
	}
	return best
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
