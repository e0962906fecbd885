package router

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// route is a test route; a path written "=/p" is the exact route of "/p"
// (as NGINX writes "location = /p").
type route struct {
	host, path string
	priority   int
	value      string
}

// exactPath splits the "=" off an exact test path.
func exactPath(p string) (path string, exact bool) { return strings.CutPrefix(p, "=") }

// insert inserts r into b, InsertExact for a "=" path.
func (r route) insert(b *Builder[string]) error {
	if p, exact := exactPath(r.path); exact {
		return b.InsertExact(r.host, p, r.priority, r.value)
	}
	return b.Insert(r.host, r.path, r.priority, r.value)
}

func build(t testing.TB, routes []route) *Table[string] {
	t.Helper()
	b := NewBuilder[string]()
	for _, r := range routes {
		if err := r.insert(b); err != nil {
			t.Fatalf("Insert(%q, %q, %d): %v", r.host, r.path, r.priority, err)
		}
	}
	return b.Build()
}

// lookupCase is one request and the route it must reach: want is the route's
// value and match the stored pattern and prefix; want "" means no route (404).
type lookupCase struct {
	host, path string
	want       string
	match      Match
}

func checkLookups(t *testing.T, tab *Table[string], cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		v, m, ok := tab.Lookup(c.host, c.path)
		if c.want == "" {
			if ok {
				t.Errorf("Lookup(%q, %q) = %q %+v, want no route", c.host, c.path, v, m)
			}
			continue
		}
		if !ok || v != c.want || m != c.match {
			t.Errorf("Lookup(%q, %q) = %q %+v %v, want %q %+v", c.host, c.path, v, m, ok, c.want, c.match)
		}
	}
}

var testRoutes = []route{
	{"app.example.org", "/", 0, "app"},
	{"app.example.org", "/api", 0, "app-api"},
	{"app.example.org", "/api/v1/", 0, "app-api-v1"}, // stored as /api/v1
	{"app.example.org", "/apiary", 0, "app-apiary"},
	{"api.example.org", "/only", 0, "api-only"}, // no root: other paths fall through
	{"*.example.org", "/", 0, "wild"},
	{"*.example.org", "/static", 0, "wild-static"},
	{"*.b.example.org", "/", 0, "wild-b"},
	{"*.c.example.org", "/deep", 0, "wild-c-deep"}, // no root: falls through to *.example.org
	{"example.org", "/", 0, "apex"},
	{"Mixed.Example.NET.", "/", 0, "mixed"},
	{"", "/", 0, "default"},
	{"", "/health", 0, "default-health"},
	{"prio.test", "/x", 1, "prio-1"},
	{"prio.test", "/x", 5, "prio-5"},
	{"prio.test", "/x", 3, "prio-3"},
	{"exact.test", "=/health", 0, "exact-health"},
	{"exact.test", "/health", 0, "prefix-health"},
	{"exact.test", "=/", 0, "exact-root"},
	{"exact.test", "=/docs/", 0, "exact-docs-slash"},
	{"exact.test", "=/ready", 2, "exact-ready-2"},
	{"exact.test", "=/ready", 1, "exact-ready-1"},
	{"exact.test", "/ready", 9, "prefix-ready-9"},
	{"exact-only.test", "=/health", 0, "only-exact-health"},
	{"*.exact.test", "=/status", 0, "wild-exact-status"},
	{"", "=/ping", 0, "default-exact-ping"},
}

func TestLookup(t *testing.T) {
	tab := build(t, testRoutes)
	m := func(h, p string) Match { return Match{h, p, false} }
	x := func(h, p string) Match { return Match{h, p, true} }
	checkLookups(t, tab, []lookupCase{
		// Exact host, longest prefix on segment boundaries.
		{"app.example.org", "/", "app", m("app.example.org", "/")},
		{"app.example.org", "", "app", m("app.example.org", "/")},
		{"app.example.org", "/x/y", "app", m("app.example.org", "/")},
		{"app.example.org", "/api", "app-api", m("app.example.org", "/api")},
		{"app.example.org", "/api/", "app-api", m("app.example.org", "/api")},
		{"app.example.org", "/api/x", "app-api", m("app.example.org", "/api")},
		{"app.example.org", "/apix", "app", m("app.example.org", "/")},
		{"app.example.org", "/ap", "app", m("app.example.org", "/")},
		{"app.example.org", "/api/v1", "app-api-v1", m("app.example.org", "/api/v1")},
		{"app.example.org", "/api/v1/users/7", "app-api-v1", m("app.example.org", "/api/v1")},
		{"app.example.org", "/api/v10", "app-api", m("app.example.org", "/api")},
		{"app.example.org", "/api/v", "app-api", m("app.example.org", "/api")},
		{"app.example.org", "/apiary", "app-apiary", m("app.example.org", "/apiary")},
		{"app.example.org", "/apiary/x", "app-apiary", m("app.example.org", "/apiary")},
		{"app.example.org", "/apiar", "app", m("app.example.org", "/")},
		{"app.example.org", "*", "app", m("app.example.org", "/")}, // only the root route matches "*"

		// Case, port, trailing dot.
		{"APP.Example.ORG", "/api", "app-api", m("app.example.org", "/api")},
		{"app.example.org:8080", "/api", "app-api", m("app.example.org", "/api")},
		{"app.example.org.", "/api", "app-api", m("app.example.org", "/api")},
		{"App.Example.Org.:443", "/api", "app-api", m("app.example.org", "/api")},
		{"mixed.example.net", "/", "mixed", m("mixed.example.net", "/")},
		{"MIXED.EXAMPLE.NET:80", "/z", "mixed", m("mixed.example.net", "/")},

		// Wildcards: any depth, longest suffix first, never the apex.
		{"x.example.org", "/", "wild", m("*.example.org", "/")},
		{"x.y.z.example.org", "/static/a.css", "wild-static", m("*.example.org", "/static")},
		{"X.Example.Org:81", "/static", "wild-static", m("*.example.org", "/static")},
		{"x.b.example.org", "/", "wild-b", m("*.b.example.org", "/")},
		{"x.y.b.example.org", "/static", "wild-b", m("*.b.example.org", "/")},
		{"b.example.org", "/", "wild", m("*.example.org", "/")}, // apex of *.b, a subdomain of *.example.org
		{"example.org", "/", "apex", m("example.org", "/")},
		{"example.org", "/static", "apex", m("example.org", "/")},
		{".example.org", "/", "default", m("", "/")}, // empty label in front of the suffix
		{"x.c.example.org", "/deep/x", "wild-c-deep", m("*.c.example.org", "/deep")},
		{"x.c.example.org", "/static", "wild-static", m("*.example.org", "/static")},
		{"x.c.example.org", "/deeper", "wild", m("*.example.org", "/")},

		// Fall-through: exact host without a matching path.
		{"api.example.org", "/only/1", "api-only", m("api.example.org", "/only")},
		{"api.example.org", "/other", "wild", m("*.example.org", "/")},
		{"api.example.org", "/static", "wild-static", m("*.example.org", "/static")},

		// Default backend.
		{"unknown.test", "/", "default", m("", "/")},
		{"unknown.test", "/health", "default-health", m("", "/health")},
		{"unknown.test", "/healthz", "default", m("", "/")},
		{"", "/health/live", "default-health", m("", "/health")},
		{"[::1]:80", "/", "default", m("", "/")},
		{"[::1]", "/health", "default-health", m("", "/health")},
		{"127.0.0.1:8080", "/", "default", m("", "/")},
		{strings.Repeat("a.", 127) + "org", "/", "default", m("", "/")}, // 257 bytes: never a named host

		// Priorities: the highest wins.
		{"prio.test", "/x", "prio-5", m("prio.test", "/x")},
		{"prio.test", "/x/y", "prio-5", m("prio.test", "/x")},
		{"prio.test", "/y", "default", m("", "/")},

		// Exact paths: the path itself and nothing below it or beside it;
		// an exact route wins over the prefix route of its path.
		{"exact.test", "/health", "exact-health", x("exact.test", "/health")},
		{"EXACT.test:80", "/health", "exact-health", x("exact.test", "/health")},
		{"exact.test", "/health/", "prefix-health", m("exact.test", "/health")},
		{"exact.test", "/health/x", "prefix-health", m("exact.test", "/health")},
		{"exact.test", "/healthz", "default", m("", "/")}, // exact.test has no prefix route "/"
		{"exact.test", "/", "exact-root", x("exact.test", "/")},
		{"exact.test", "", "exact-root", x("exact.test", "/")},
		{"exact.test", "*", "exact-root", x("exact.test", "/")},
		{"exact.test", "/other", "default", m("", "/")},
		{"exact.test", "/docs/", "exact-docs-slash", x("exact.test", "/docs/")},
		{"exact.test", "/docs", "default", m("", "/")},
		{"exact.test", "/docs/x", "default", m("", "/")},
		{"exact.test", "/ready", "exact-ready-2", x("exact.test", "/ready")}, // exact beats a higher-priority prefix
		{"exact.test", "/ready/x", "prefix-ready-9", m("exact.test", "/ready")},
		{"exact-only.test", "/health", "only-exact-health", x("exact-only.test", "/health")},
		{"exact-only.test", "/health/x", "default-health", m("", "/health")}, // falls through
		{"exact-only.test", "/healthz", "default", m("", "/")},
		{"a.exact.test", "/status", "wild-exact-status", x("*.exact.test", "/status")},
		{"a.exact.test", "/status/x", "default", m("", "/")},
		{"unknown.test", "/ping", "default-exact-ping", x("", "/ping")},
		{"unknown.test", "/ping/x", "default", m("", "/")},
	})
}

func TestLookupNoDefault(t *testing.T) {
	tab := build(t, []route{
		{"app.example.org", "/api", 0, "api"},
		{"*.example.org", "/static", 0, "static"},
	})
	checkLookups(t, tab, []lookupCase{
		{"app.example.org", "/api", "api", Match{"app.example.org", "/api", false}},
		{"app.example.org", "/", "", Match{}},
		{"app.example.org", "/apix", "", Match{}},
		{"app.example.org", "/static", "static", Match{"*.example.org", "/static", false}},
		{"example.org", "/static", "", Match{}},
		{"other.test", "/api", "", Match{}},
		{"", "/", "", Match{}},
		{"[::1]:80", "/api", "", Match{}},
	})

	empty := NewBuilder[int]().Build()
	if v, m, ok := empty.Lookup("a.test", "/"); ok || v != 0 || m != (Match{}) {
		t.Errorf("empty table Lookup = %v %+v %v, want zero values", v, m, ok)
	}
	if empty.Len() != 0 || len(empty.Routes()) != 0 {
		t.Errorf("empty table Len %d Routes %d, want 0", empty.Len(), len(empty.Routes()))
	}
}

func TestInsertErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	// A 253-byte name made of 63-byte labels, the longest valid host.
	host253 := strings.Join([]string{long(63), long(63), long(63), long(61)}, ".")
	for _, c := range []struct {
		host, path string
		err        error
	}{
		{"app.example.org", "/", nil},
		{"APP.example.org.", "/", nil},
		{"*.example.org", "/", nil},
		{"*.org", "/", nil},
		{"10.0.0.1", "/", nil},
		{host253, "/", nil},
		{"*." + host253[2:], "/", nil},
		{long(63) + ".org", "/", nil},
		{"", "/api/v1/x%2Fy", nil},
		{"", "/a-b_c.d~e!$&'()*+,;=:@", nil},

		{"*", "/", ErrInvalidHost},
		{"*.", "/", ErrInvalidHost},
		{"*example.org", "/", ErrInvalidHost},
		{"a.*.example.org", "/", ErrInvalidHost},
		{"*.*.example.org", "/", ErrInvalidHost},
		{"app*.example.org", "/", ErrInvalidHost},
		{"app.example.org*", "/", ErrInvalidHost},
		{".", "/", ErrInvalidHost},
		{".example.org", "/", ErrInvalidHost},
		{"a..example.org", "/", ErrInvalidHost},
		{"example.org..", "/", ErrInvalidHost},
		{"app.example.org:80", "/", ErrInvalidHost},
		{"[::1]", "/", ErrInvalidHost},
		{"app example.org", "/", ErrInvalidHost},
		{"my_service.internal", "/", ErrInvalidHost}, // one host rule with the label parser: no '_'
		{"a.test", "/a/%2E%2e/b", ErrInvalidPath},    // encoded dot segment
		{"app/example.org", "/", ErrInvalidHost},
		{"ÿ.example.org", "/", ErrInvalidHost},
		{"-app.example.org", "/", ErrInvalidHost},
		{"app-.example.org", "/", ErrInvalidHost},
		{long(64) + ".org", "/", ErrInvalidHost},
		{host253 + "a", "/", ErrInvalidHost},
		{"*." + host253, "/", ErrInvalidHost},

		{"a.test", "", ErrInvalidPath},
		{"a.test", "api", ErrInvalidPath},
		{"a.test", "//", ErrInvalidPath},
		{"a.test", "/api//", ErrInvalidPath},
		{"a.test", "/a//b", ErrInvalidPath},
		{"a.test", "/./a", ErrInvalidPath},
		{"a.test", "/a/..", ErrInvalidPath},
		{"a.test", "/a/../b", ErrInvalidPath},
		{"a.test", "/a b", ErrInvalidPath},
		{"a.test", "/a?b", ErrInvalidPath},
		{"a.test", "/a#b", ErrInvalidPath},
		{"a.test", "/a\x00", ErrInvalidPath},
		{"a.test", "/caf\xc3\xa9", ErrInvalidPath},
		{"a.test", "/a%2", ErrInvalidPath},
		{"a.test", "/a%zz", ErrInvalidPath},
		{"a.test", "/" + long(maxPathLen), ErrInvalidPath},
	} {
		err := NewBuilder[int]().Insert(c.host, c.path, 0, 1)
		if !errors.Is(err, c.err) {
			t.Errorf("Insert(%q, %q) = %v, want %v", c.host, c.path, err, c.err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "router: ") {
			t.Errorf("Insert(%q, %q) error %q lacks the package prefix", c.host, c.path, err)
		}
	}
}

func TestInsertConflict(t *testing.T) {
	for _, c := range []struct {
		name       string
		first, dup route
	}{
		{"same", route{"a.test", "/api", 0, "1"}, route{"a.test", "/api", 0, "2"}},
		{"trailing slash", route{"a.test", "/api", 0, "1"}, route{"a.test", "/api/", 0, "2"}},
		{"host case and dot", route{"a.test", "/", 3, "1"}, route{"A.Test.", "/", 3, "2"}},
		{"wildcard", route{"*.a.test", "/", 0, "1"}, route{"*.A.TEST", "/", 0, "2"}},
		{"default", route{"", "/x", -1, "1"}, route{"", "/x", -1, "2"}},
		{"exact", route{"a.test", "=/api", 0, "1"}, route{"A.test", "=/api", 0, "2"}},
		{"exact keeps its slash", route{"a.test", "=/api/", 0, "1"}, route{"a.test", "=/api/", 0, "2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder[string]()
			if err := c.first.insert(b); err != nil {
				t.Fatal(err)
			}
			// A different priority on the same host and path is not a conflict.
			lower := c.dup
			lower.priority, lower.value = c.dup.priority-1, "lower"
			if err := lower.insert(b); err != nil {
				t.Fatalf("lower priority: %v", err)
			}
			err := c.dup.insert(b)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Insert duplicate = %v, want ErrConflict", err)
			}
			// Nor is the other kind of route on the same host, path and priority.
			other := c.dup
			if p, exact := exactPath(other.path); exact {
				other.path = p
			} else {
				other.path = "=" + p
			}
			if err := other.insert(b); err != nil {
				t.Fatalf("the other kind of route: %v", err)
			}
			tab := b.Build()
			// The first route still answers: an exact one for its path, a
			// prefix one below its path (its path itself is the exact
			// route's).
			p, exact := exactPath(c.first.path)
			if !exact {
				p = strings.TrimSuffix(p, "/") + "/below"
			}
			if v, _, ok := tab.Lookup(c.first.host, p); !ok || v != c.first.value {
				t.Errorf("after conflict Lookup = %q %v, want the first route %q", v, ok, c.first.value)
			}
		})
	}
}

func TestPriorities(t *testing.T) {
	// Whatever the insertion order, the highest priority is served.
	prios := []int{-5, 0, 7, 3}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		b := NewBuilder[int]()
		for _, i := range order {
			if err := b.Insert("a.test", "/p", prios[i], prios[i]); err != nil {
				t.Fatal(err)
			}
		}
		tab := b.Build()
		if v, _, ok := tab.Lookup("a.test", "/p/q"); !ok || v != 7 {
			t.Errorf("order %v: Lookup = %d %v, want 7", order, v, ok)
		}
		if tab.Len() != 1 {
			t.Errorf("order %v: Len = %d, want 1", order, tab.Len())
		}
	}
}

func TestRoutes(t *testing.T) {
	tab := build(t, testRoutes)
	got := tab.Routes()
	want := []Entry[string]{
		{"", "/", false, 0, "default", false},
		{"", "/health", false, 0, "default-health", false},
		{"", "/ping", true, 0, "default-exact-ping", false},
		{"*.b.example.org", "/", false, 0, "wild-b", false},
		{"*.c.example.org", "/deep", false, 0, "wild-c-deep", false},
		{"*.exact.test", "/status", true, 0, "wild-exact-status", false},
		{"*.example.org", "/", false, 0, "wild", false},
		{"*.example.org", "/static", false, 0, "wild-static", false},
		{"api.example.org", "/only", false, 0, "api-only", false},
		{"app.example.org", "/", false, 0, "app", false},
		{"app.example.org", "/api", false, 0, "app-api", false},
		{"app.example.org", "/api/v1", false, 0, "app-api-v1", false},
		{"app.example.org", "/apiary", false, 0, "app-apiary", false},
		{"exact-only.test", "/health", true, 0, "only-exact-health", false},
		{"exact.test", "/", true, 0, "exact-root", false},
		{"exact.test", "/docs/", true, 0, "exact-docs-slash", false},
		{"exact.test", "/health", true, 0, "exact-health", false},
		{"exact.test", "/health", false, 0, "prefix-health", false},
		{"exact.test", "/ready", true, 2, "exact-ready-2", false},
		{"exact.test", "/ready", true, 1, "exact-ready-1", true},
		{"exact.test", "/ready", false, 9, "prefix-ready-9", false},
		{"example.org", "/", false, 0, "apex", false},
		{"mixed.example.net", "/", false, 0, "mixed", false},
		{"prio.test", "/x", false, 5, "prio-5", false},
		{"prio.test", "/x", false, 3, "prio-3", true},
		{"prio.test", "/x", false, 1, "prio-1", true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Routes() =\n%v\nwant\n%v", got, want)
	}
	if tab.Len() != len(want)-3 {
		t.Errorf("Len() = %d, want %d", tab.Len(), len(want)-3)
	}
	// Routes returns a copy: callers cannot change the table.
	got[0].Value = "changed"
	if tab.Routes()[0].Value != "default" {
		t.Error("Routes() shares its slice with the table")
	}
}

func TestBuildTwice(t *testing.T) {
	b := NewBuilder[int]()
	if err := b.Insert("a.test", "/", 0, 1); err != nil {
		t.Fatal(err)
	}
	tab := b.Build()
	if err := b.Insert("b.test", "/", 0, 2); !errors.Is(err, ErrBuilt) {
		t.Errorf("Insert after Build = %v, want ErrBuilt", err)
	}
	if b.Build() != tab || tab.Len() != 1 {
		t.Errorf("second Build changed the table")
	}
	if _, _, ok := tab.Lookup("b.test", "/"); ok {
		t.Error("route inserted after Build is served")
	}
}

func TestLookupAllocs(t *testing.T) {
	tab := build(t, testRoutes)
	for _, c := range []struct{ host, path string }{
		{"APP.Example.ORG:8443", "/api/v1/users"},
		{"x.y.B.example.org.", "/static/app.js"},
		{"unknown.test", "/health/live"},
		{"[::1]:80", "/"},
		{strings.Repeat("A", 300), "/"},
	} {
		if n := testing.AllocsPerRun(100, func() { tab.Lookup(c.host, c.path) }); n != 0 {
			t.Errorf("Lookup(%q, %q) allocates %v times per run, want 0", c.host, c.path, n)
		}
	}
}

// TestTreeInvariants inserts many paths and walks every tree: a node other
// than the root has a non-empty prefix, and either a route or at least two
// children (edges are compressed); children's first bytes are distinct and
// match indices; a route's stored path is the concatenation of prefixes on
// the way down; every inserted path is found.
func TestTreeInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := NewBuilder[string]()
	inserted := map[string]bool{}
	for range 2000 {
		p, err := ParsePath(randomPath(rng))
		if err != nil {
			t.Fatal(err)
		}
		if inserted[p] {
			continue
		}
		if err := b.Insert("a.test", p, 0, p); err != nil {
			t.Fatalf("Insert %q: %v", p, err)
		}
		inserted[p] = true
	}
	// Build lays the tree out and drops it: walk it as the builder left it.
	root := b.t.exact.lookup("a.test").root
	tab := b.Build()
	routes := 0
	var walk func(n *node[string], above string, isRoot bool)
	walk = func(n *node[string], above string, isRoot bool) {
		full := above + n.prefix
		if !isRoot {
			if n.prefix == "" {
				t.Errorf("node under %q has an empty prefix", above)
			}
			if !n.routed() && len(n.children) < 2 {
				t.Errorf("node %q has no route and %d children", full, len(n.children))
			}
		}
		if len(n.indices) != len(n.children) {
			t.Errorf("node %q: %d indices for %d children", full, len(n.indices), len(n.children))
		}
		seen := map[byte]bool{}
		for i, c := range n.children {
			if seen[c.prefix[0]] {
				t.Errorf("node %q: two children start with %q", full, c.prefix[0])
			}
			seen[c.prefix[0]] = true
			if n.indices[i] != c.prefix[0] {
				t.Errorf("node %q: index %q for child %q", full, n.indices[i], c.prefix)
			}
			walk(c, full, false)
		}
		if n.routed() {
			routes++
			if n.path != full || n.route.value != full || n.exact.set || !inserted[full] {
				t.Errorf("route node at %q stores path %q value %q", full, n.path, n.route.value)
			}
		}
	}
	walk(root, "", true)
	if routes != len(inserted) {
		t.Errorf("walk found %d routes, inserted %d", routes, len(inserted))
	}
	for p := range inserted {
		if v, m, ok := tab.Lookup("a.test", p); !ok || v != p || m.Path != p {
			t.Errorf("Lookup(%q) = %q %+v %v", p, v, m, ok)
		}
	}
}

// Random routes and requests over a small alphabet, so that prefixes,
// segment boundaries, shared suffixes and fall-through collide often.
var (
	randSegments = []string{"a", "ab", "abc", "api", "apix", "b", "v1", "v10", "x"}
	randLabels   = []string{"a", "b", "ab", "x", "example"}
)

func randomPath(rng *rand.Rand) string {
	var sb strings.Builder
	for range rng.IntN(4) {
		sb.WriteString("/" + randSegments[rng.IntN(len(randSegments))])
	}
	if sb.Len() == 0 || rng.IntN(8) == 0 {
		sb.WriteString("/")
	}
	return sb.String()
}

func randomHost(rng *rand.Rand) string {
	labels := make([]string, 1+rng.IntN(4))
	for i := range labels {
		labels[i] = randLabels[rng.IntN(len(randLabels))]
	}
	return strings.Join(labels, ".")
}

// naiveLookup is the specification as a linear scan: per host class (exact,
// wildcards by decreasing suffix length, default), an exact route whose path
// is the request's, else the longest path prefix on a segment boundary, then
// the highest priority.
func naiveLookup(routes []route, host, path string) (string, bool) {
	host = strings.ToLower(host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if path == "" {
		path = "/"
	}
	best := func(pattern string) (string, bool) {
		var found *route
		foundLen := -1
		for i := range routes {
			r := &routes[i]
			h, _, _ := ParseHost(r.host)
			if h != pattern {
				continue
			}
			// An exact match ranks above every prefix: it is longer than
			// any of them could be.
			rank := 0
			if p, exact := exactPath(r.path); exact {
				if p != path && !(p == "/" && path[0] != '/') {
					continue
				}
				rank = maxPathLen + 1
			} else {
				p, _ := ParsePath(r.path)
				if !(p == "/" || strings.HasPrefix(path, p) && (len(path) == len(p) || path[len(p)] == '/')) {
					continue
				}
				rank = len(p)
			}
			if rank > foundLen || rank == foundLen && r.priority > found.priority {
				found, foundLen = r, rank
			}
		}
		if found == nil {
			return "", false
		}
		return found.value, true
	}
	if host != "" {
		if v, ok := best(host); ok {
			return v, true
		}
		for i := 1; i < len(host); i++ {
			if host[i] == '.' {
				if v, ok := best("*" + host[i:]); ok {
					return v, true
				}
			}
		}
	}
	return best("")
}

func TestLookupRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var routes []route
		b := NewBuilder[string]()
		seen := map[string]bool{}
		for i := range 1 + rng.IntN(60) {
			var host string
			switch rng.IntN(6) {
			case 0:
				host = ""
			case 1, 2:
				host = "*." + randomHost(rng)
			default:
				host = randomHost(rng)
			}
			r := route{host, randomPath(rng), rng.IntN(3), fmt.Sprint(i)}
			h, _, _ := ParseHost(r.host)
			p, _ := ParsePath(r.path)
			if rng.IntN(3) == 0 { // an exact route, its path as written
				p = "=" + r.path
				r.path = p
			}
			key := fmt.Sprint(h, " ", p, " ", r.priority)
			err := r.insert(b)
			if seen[key] != errors.Is(err, ErrConflict) || (err != nil && !seen[key]) {
				t.Fatalf("round %d: Insert %+v = %v (duplicate %v)", round, r, err, seen[key])
			}
			if err == nil {
				seen[key] = true
				routes = append(routes, r)
			}
		}
		tab := b.Build()
		for range 200 {
			host := randomHost(rng)
			if rng.IntN(3) == 0 {
				host = strings.ToUpper(host[:1]) + host[1:]
			}
			if rng.IntN(3) == 0 {
				host += ":8080"
			}
			path := randomPath(rng)
			if rng.IntN(10) == 0 {
				path = ""
			}
			want, wantOK := naiveLookup(routes, host, path)
			got, _, ok := tab.Lookup(host, path)
			if got != want || ok != wantOK {
				t.Fatalf("round %d: Lookup(%q, %q) = %q %v, naive %q %v\nroutes: %+v",
					round, host, path, got, ok, want, wantOK, routes)
			}
		}
	}
}
