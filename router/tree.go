package router

import "strings"

// node is one node of a path radix tree. Edges are compressed: a node's
// prefix is the run of bytes shared by everything below it, so a chain of
// single-child nodes without values never exists (the invariant test walks
// the tree to check this).
//
// Paths are prefixes or exact paths, not patterns: there are no parameters
// or catch-alls, so unlike httprouter's tree there is only one kind of node,
// and at most two routes end at one: a prefix route and an exact one.
type node[V any] struct {
	prefix   string     // edge label: bytes consumed on entering this node
	indices  string     // first byte of each child's prefix, in children's order
	children []*node[V] // one per byte of indices

	// path is the whole route path of the node's routes, kept so that a
	// lookup can report the match without building a string; "" while
	// no route ends here.
	path string
	// route is the prefix route that ends here: it matches path and the
	// paths below it. exact is the exact route: it matches path only, and
	// wins over route for it.
	route, exact leaf[V]
}

// leaf is one route that ends at a node.
type leaf[V any] struct {
	set      bool // a route ends here; value and priority are its
	value    V
	priority int
}

// leaf returns the node's exact route, or its prefix route.
func (n *node[V]) leaf(exact bool) *leaf[V] {
	if exact {
		return &n.exact
	}
	return &n.route
}

// routed reports whether a route, of either kind, ends at the node.
func (n *node[V]) routed() bool { return n.route.set || n.exact.set }

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

// lookup returns the node of the route that path takes, or nil, and
// whether that is the node's exact route: an exact route whose path is path,
// else the longest prefix route that is a prefix of path on a segment
// boundary. It walks down the tree once, remembering the last prefix route
// that ended where path has "/" or ends; the root route "/" ends on a
// boundary by definition. It allocates nothing.
func (n *node[V]) lookup(path string) (best *node[V], exact bool) {
	for n != nil {
		if len(path) < len(n.prefix) || path[:len(n.prefix)] != n.prefix {
			break
		}
		path = path[len(n.prefix):]
		if path == "" && n.exact.set {
			return n, true
		}
		if n.route.set && (path == "" || path[0] == '/' || len(n.path) == 1) {
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
	return best, false
}

// find returns the node whose routes' path is path, or nil.
func (n *node[V]) find(path string) *node[V] {
	for n != nil && strings.HasPrefix(path, n.prefix) {
		if path = path[len(n.prefix):]; path == "" {
			return n
		}
		i := strings.IndexByte(n.indices, path[0])
		if i < 0 {
			return nil
		}
		n = n.children[i]
	}
	return nil
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
