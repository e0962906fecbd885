package router

import "math/rand/v2"

// hostMap maps the host names of a table (exact hosts, or wildcard suffixes
// such as ".example.org") to their trees. It is an open-addressing hash
// table with linear probing, at most three quarters full. A slot holds the
// key's hash and length and the tree's flat bytes and routes, and the bytes
// begin with the key: a probe compares the key only when hash and length
// agree, and the bytes it reads to compare are the ones the path walk reads
// next, so a lookup's cache misses are the slot, the flat bytes and the
// route it finds, never the tree. get
// takes a host in any case (hashHost, equalFold) and allocates nothing.
//
// A Go map would touch more cache lines per lookup: its control word and
// slot, the key's bytes, the tree it points to, and the tree's nodes each
// live apart. A Table never changes its hostMaps; an Editor clones them.
type hostMap[V any] struct {
	seed  uint64
	slots []hostSlot[V] // len is 0 or a power of two
	n     int           // trees in slots
	keyAt int           // where the key starts in a tree's flat bytes: 1 past the "*" of a wildcard

	// minLen and maxLen bound the lengths of the keys (loosely after a
	// del), so that a lookup skips probes that cannot hit.
	minLen, maxLen int
}

type hostSlot[V any] struct {
	tag    uint64 // 0: the slot is empty; else tagOf the key
	bytes  string // tr.flat.bytes
	routes []flatRoute[V]
	tr     *tree[V]
}

// tagOf packs a key's length (at most maxHostLen) into the top byte of its
// hash; the low bits choose the key's home slot.
func tagOf(h uint64, keyLen int) uint64 { return h>>8 | uint64(keyLen)<<56 }

func newHostMap[V any](keyAt int) hostMap[V] {
	return hostMap[V]{seed: rand.Uint64(), keyAt: keyAt}
}

// get returns the slot whose key is host lower-cased, or nil.
func (m *hostMap[V]) get(host string) *hostSlot[V] {
	if len(host) < m.minLen || len(host) > m.maxLen || m.n == 0 {
		return nil
	}
	mask := uint64(len(m.slots) - 1)
	tag := tagOf(hashHost(m.seed, host), len(host))
	for i := tag & mask; ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.tag == 0 {
			return nil
		}
		if s.tag == tag && equalFold(s.bytes[m.keyAt:m.keyAt+len(host)], host) {
			return s
		}
	}
}

// find returns the slot of key, or of the empty slot where it would go.
func (m *hostMap[V]) find(key string) (i uint64, tag uint64) {
	mask := uint64(len(m.slots) - 1)
	tag = tagOf(hashHost(m.seed, key), len(key))
	for i = tag & mask; ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.tag == 0 || s.tag == tag && s.tr.key == key {
			return i, tag
		}
	}
}

// lookup returns the tree whose key is key, or nil; for builders, which
// hold the key as a string.
func (m *hostMap[V]) lookup(key string) *tree[V] {
	if m.n == 0 {
		return nil
	}
	i, _ := m.find(key)
	return m.slots[i].tr
}

// set stores tr under tr.key, replacing the tree stored there. A tree
// that is compiled later must be set again, for its slot to hold its bytes.
func (m *hostMap[V]) set(tr *tree[V]) {
	if 4*(m.n+1) > 3*len(m.slots) {
		m.grow()
	}
	i, tag := m.find(tr.key)
	if m.slots[i].tag == 0 {
		m.n++
	}
	m.slots[i] = hostSlot[V]{tag, tr.flat.bytes, tr.flat.routes, tr}
	if m.n == 1 || len(tr.key) < m.minLen {
		m.minLen = len(tr.key)
	}
	m.maxLen = max(m.maxLen, len(tr.key))
}

// grow doubles the slots (16 at first) and places every tree again.
func (m *hostMap[V]) grow() {
	old := m.slots
	m.slots = make([]hostSlot[V], max(16, 2*len(old)))
	mask := uint64(len(m.slots) - 1)
	for _, s := range old {
		if s.tag == 0 {
			continue
		}
		i := s.tag & mask
		for m.slots[i].tag != 0 {
			i = (i + 1) & mask
		}
		m.slots[i] = s
	}
}

// del removes key's tree, if any. The slots after it move back so that no
// probe sequence has a gap (backward-shift deletion), and no tombstones
// are needed.
func (m *hostMap[V]) del(key string) {
	if m.n == 0 {
		return
	}
	i, _ := m.find(key)
	if m.slots[i].tag == 0 {
		return
	}
	m.n--
	mask := uint64(len(m.slots) - 1)
	for j := i; ; {
		j = (j + 1) & mask
		s := m.slots[j]
		if s.tag == 0 {
			break
		}
		// s may move to the hole at i unless its home slot lies
		// cyclically in (i, j]: then it is still reachable from home.
		if home := s.tag & mask; (i < j && i < home && home <= j) || (i > j && (i < home || home <= j)) {
			continue
		}
		m.slots[i] = s
		i = j
	}
	m.slots[i] = hostSlot[V]{}
}

// clone returns a copy that set and del can change without changing m.
func (m *hostMap[V]) clone() hostMap[V] {
	c := *m
	c.slots = append([]hostSlot[V](nil), m.slots...)
	return c
}

// compile compiles every tree (tree.compile) and stores its bytes and
// routes in its slot.
func (m *hostMap[V]) compile() {
	for i := range m.slots {
		if s := &m.slots[i]; s.tag != 0 {
			s.tr.compile()
			s.bytes, s.routes = s.tr.flat.bytes, s.tr.flat.routes
		}
	}
}
