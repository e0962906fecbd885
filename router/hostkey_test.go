package router

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// lowerASCII is the reference for lower8, hashHost and equalFold: ASCII
// letters lower-cased, every other byte kept.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// TestLower8 checks every byte value at every position of the word.
func TestLower8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			b := []byte("xY-9.zQa")
			b[pos] = byte(c)
			if got, want := lower8(get64(string(b))), get64(lowerASCII(string(b))); got != want {
				t.Fatalf("lower8(%q) = %#x, want %#x", b, got, want)
			}
		}
	}
}

// randomBytes makes strings rich in the bytes that the word tricks treat
// specially: letters at the edges of A-Z, ':', '.', 0 and high bytes.
func randomBytes(rng *rand.Rand, n int) string {
	const alphabet = "@AZ[`az{:.9\x00\x80\xc1\xda\xff"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func TestLastColon(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		s := randomBytes(rng, rng.IntN(40))
		if got, want := lastColon(s), strings.LastIndexByte(s, ':'); got != want {
			t.Fatalf("lastColon(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestHashFold: a host hashes and compares equal to its lower-cased form at
// every length around the word size, and unequal once any byte differs.
func TestHashFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		s := randomBytes(rng, 1+rng.IntN(40))
		key := lowerASCII(s)
		if hashHost(42, s) != hashHost(42, key) {
			t.Fatalf("hashHost(%q) != hashHost(%q)", s, key)
		}
		if !equalFold(key, s) {
			t.Fatalf("equalFold(%q, %q) = false", key, s)
		}
		i := rng.IntN(len(s))
		b := []byte(key)
		b[i] ^= 1 << rng.IntN(8)
		if other := string(b); lowerASCII(other) != key && equalFold(key, other) {
			t.Fatalf("equalFold(%q, %q) = true", key, other)
		}
	}
}

// TestHostMap drives set, del, clone and get against a Go map, through
// growth and backward-shift deletions, and checks that a clone and the map
// it came from do not share changes.
func TestHostMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m := newHostMap[int](0)
	want := map[string]*tree[int]{}
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = randomHost(rng) + "." + strings.Repeat("x", rng.IntN(12))
	}
	check := func(m *hostMap[int], want map[string]*tree[int]) {
		t.Helper()
		if m.n != len(want) {
			t.Fatalf("n = %d, want %d", m.n, len(want))
		}
		for _, k := range keys {
			var got *tree[int]
			if s := m.get(strings.ToUpper(k)); s != nil {
				got = s.tr
			}
			if got != want[k] || m.lookup(k) != want[k] {
				t.Fatalf("get(%q) = %p, lookup %p, want %p", k, got, m.lookup(k), want[k])
			}
		}
	}
	for step := range 3000 {
		k := keys[rng.IntN(len(keys))]
		if rng.IntN(3) == 0 {
			m.del(k)
			delete(want, k)
		} else {
			tr := newTree[int](k)
			tr.compile()
			m.set(tr)
			want[k] = tr
		}
		if step%500 == 0 {
			check(&m, want)
			c := m.clone()
			cwant := map[string]*tree[int]{}
			for k, v := range want {
				cwant[k] = v
			}
			for _, k := range keys[:50] {
				c.del(k)
				delete(cwant, k)
			}
			check(&c, cwant)
			check(&m, want)
		}
	}
	check(&m, want)
}

// TestFlatMatchesTree: on random trees, the flat walk answers every path
// as the pointer tree it was laid out from does.
func TestFlatMatchesTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 200 {
		var root *node[string]
		for range rng.IntN(30) {
			p, _ := ParsePath(randomPath(rng))
			exact := rng.IntN(3) == 0
			if exact {
				p = randomPath(rng) // as written: an exact path keeps its "/"
			}
			var n *node[string]
			root, n = root.insert(p)
			*n.leaf(exact) = leaf[string]{set: true, value: fmt.Sprint(p, exact)}
			n.path = p
		}
		f := flatten("h.test", root)
		for range 100 {
			checkFlatLookup(t, root, f, randomPath(rng), "")
		}
	}
}

// checkFlatLookup fails t unless the flat tree f finds for path p what the
// pointer tree root does, and a route whose value is its own (path, exact).
func checkFlatLookup(t *testing.T, root *node[string], f flatTree[string], p, what string) {
	t.Helper()
	var want, got string
	if n, exact := root.lookup(p); n != nil {
		want = n.leaf(exact).value
	}
	if r, exact := f.lookup(p); r != nil {
		got = r.value
		if r.value != fmt.Sprint(r.path, exact) {
			t.Fatalf("%sflat lookup(%q) = %+v exact %v: another route's value", what, p, r, exact)
		}
	}
	if got != want {
		t.Fatalf("%sflat lookup(%q) = %q, tree %q", what, p, got, want)
	}
}

// TestFlatWideNodes: nodes with up to 40 children (searched eight first
// bytes at a time, and past eight by strings.IndexByte) and prefixes of any
// length around the word size lay out and walk as the pointer tree does,
// for requests shorter and longer than eight bytes.
func TestFlatWideNodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const firsts = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
	seg := func() string {
		b := []byte{firsts[rng.IntN(len(firsts))]}
		for range rng.IntN(12) {
			b = append(b, "ab"[rng.IntN(2)])
		}
		return string(b)
	}
	randPath := func(segs int) string {
		var sb strings.Builder
		for range segs {
			sb.WriteString("/" + seg())
		}
		if sb.Len() == 0 {
			return "/"
		}
		return sb.String()
	}
	for _, kids := range []int{1, 7, 8, 9, 16, 17, 40} {
		var root *node[string]
		var paths []string
		for range 3 * kids {
			p := randPath(1 + rng.IntN(3))
			exact := rng.IntN(4) == 0
			var n *node[string]
			root, n = root.insert(p)
			*n.leaf(exact) = leaf[string]{set: true, value: fmt.Sprint(p, exact)}
			n.path = p
			paths = append(paths, p)
		}
		f := flatten("wide.test", root)
		for range 2000 {
			var p string
			switch rng.IntN(3) {
			case 0:
				p = paths[rng.IntN(len(paths))] // a route's path
			case 1:
				p = paths[rng.IntN(len(paths))] + randPath(rng.IntN(2)) // below it
			default:
				p = randPath(rng.IntN(3))
				p = p[:rng.IntN(len(p)+1)] // any prefix, "" and short ones too
			}
			checkFlatLookup(t, root, f, p, fmt.Sprintf("%d children: ", kids))
		}
	}
}

// TestWord: word reads every length below eight as the byte loop does.
func TestWord(t *testing.T) {
	for n := range 8 {
		s := "\x01\x02\x03\x04\x05\x06\x07"[:n]
		var want uint64
		for i := n - 1; i >= 0; i-- {
			want = want<<8 | uint64(s[i])
		}
		if got := word(s); got != want {
			t.Errorf("word(%q) = %#x, want %#x", s, got, want)
		}
	}
}

// TestLookupHostCase: hosts of every length around the word size, in any
// mix of case, with ports, trailing dots and bytes that only look like
// letters once their high bit is cleared, reach the route the naive
// specification names.
func TestLookupHostCase(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var routes []route
	b := NewBuilder[string]()
	labels := []string{"a", "bc", "def", "ghij", "klmnopq", "rstuvwxy", "z0123456789"}
	name := func() string {
		parts := make([]string, 1+rng.IntN(4))
		for i := range parts {
			parts[i] = labels[rng.IntN(len(labels))]
		}
		return strings.Join(parts, ".")
	}
	seen := map[string]bool{}
	for range 200 {
		h := name()
		if rng.IntN(3) == 0 {
			h = "*." + h
		}
		if seen[h] {
			continue
		}
		seen[h] = true
		r := route{h, "/", 0, h}
		if err := b.Insert(r.host, r.path, r.priority, r.value); err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	routes = append(routes, route{"", "/", 0, "default"})
	if err := b.Insert("", "/", 0, "default"); err != nil {
		t.Fatal(err)
	}
	tab := b.Build()
	for range 5000 {
		hb := []byte(name())
		for i, c := range hb {
			switch rng.IntN(6) {
			case 0, 1:
				hb[i] = byte(strings.ToUpper(string(c))[0])
			case 2:
				if 'a' <= c && c <= 'z' {
					hb[i] = c - 'a' + 'A' + 0x80 // not a letter
				}
			}
		}
		host := string(hb)
		switch rng.IntN(4) {
		case 0:
			host += ":8443"
		case 1:
			host += "."
		case 2:
			host += ":x:1" // the port is after the last colon
		}
		want, wantOK := naiveLookup(routes, host, "/")
		got, m, ok := tab.Lookup(host, "/")
		if got != want || ok != wantOK {
			t.Fatalf("Lookup(%q) = %q %v, naive %q %v", host, got, ok, want, wantOK)
		}
		if ok && got != "default" && m.Host != got {
			t.Fatalf("Lookup(%q) matched %q, reports %q", host, got, m.Host)
		}
	}
}
