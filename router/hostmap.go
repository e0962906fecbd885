package router

import "math/rand/v2"

// hostMap maps the host names of a table (exact hosts, or wildcard suffixes
// such as ".example.org") to their trees. It is an open-addressing hash
// table with linear probing, split in hostShards shards by the key's hash,
// each at most three quarters full. A slot holds the
// key's hash and length and the tree's flat bytes and routes, and the bytes
// begin with the key: a probe compares the key only when hash and length
// agree, and the bytes it reads to compare are the ones the path walk reads
// next, so a lookup's cache misses are the slot, the flat bytes and the
// route it finds, never the tree. get
// takes a host in any case (hashHost, equalFold) and allocates nothing.
//
// A Go map would touch more cache lines per lookup: its control word and
// slot, the key's bytes, the tree it points to, and the tree's nodes each
// live apart. A Table never changes its hostMaps; an Editor clones them, and
// a clone shares every shard with the map it came from until it changes
// one: a change to one host of 10,000 copies one shard's slots, not all.
type hostMap[V any] struct {
	seed   uint64
	shards [hostShards]hostShard[V]
	n      int    // trees in the shards
	owned  uint64 // bit i: shards[i].slots is this map's own, not shared with a clone
	keyAt  int    // where the key starts in a tree's flat bytes: 1 past the "*" of a wildcard

	// minLen and maxLen bound the lengths of the keys (loosely after a
	// del), so that a lookup skips probes that cannot hit.
	minLen, maxLen int
}

// hostShards is the number of shards of a hostMap; a key's shard is bits
// 48 to 53 of its tag, its home slot the low bits.
const hostShards = 64

type hostShard[V any] struct {
	slots []hostSlot[V] // len is 0 or a power of two
	n     int           // trees in slots
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

// shardOf is the shard of a tag.
func shardOf(tag uint64) int { return int(tag>>48) & (hostShards - 1) }

func newHostMap[V any](keyAt int) hostMap[V] {
	return hostMap[V]{seed: rand.Uint64(), keyAt: keyAt, owned: ^uint64(0)}
}

// get returns the slot whose key is host lower-cased, or nil.
func (m *hostMap[V]) get(host string) *hostSlot[V] {
	if len(host) < m.minLen || len(host) > m.maxLen || m.n == 0 {
		return nil
	}
	tag := tagOf(hashHost(m.seed, host), len(host))
	slots := m.shards[shardOf(tag)].slots
	if len(slots) == 0 {
		return nil
	}
	mask := uint64(len(slots) - 1)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := &slots[i]
		if s.tag == 0 {
			return nil
		}
		if s.tag == tag && equalFold(s.bytes[m.keyAt:m.keyAt+len(host)], host) {
			return s
		}
	}
}

// find returns the shard of key and the index in it of key's slot, or of
// the empty slot where it would go. The shard must have slots.
func (m *hostMap[V]) find(key string) (sh *hostShard[V], i uint64, tag uint64) {
	tag = tagOf(hashHost(m.seed, key), len(key))
	sh = &m.shards[shardOf(tag)]
	if len(sh.slots) == 0 {
		return sh, 0, tag
	}
	mask := uint64(len(sh.slots) - 1)
	for i = tag & mask; ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.tag == 0 || s.tag == tag && s.tr.key == key {
			return sh, i, tag
		}
	}
}

// lookup returns the tree whose key is key, or nil; for builders, which
// hold the key as a string.
func (m *hostMap[V]) lookup(key string) *tree[V] {
	if m.n == 0 {
		return nil
	}
	sh, i, _ := m.find(key)
	if len(sh.slots) == 0 {
		return nil
	}
	return sh.slots[i].tr
}

// own makes shard j's slots m's own, copying them if a clone shares them.
func (m *hostMap[V]) own(j int) {
	if m.owned&(1<<j) == 0 {
		m.shards[j].slots = append([]hostSlot[V](nil), m.shards[j].slots...)
		m.owned |= 1 << j
	}
}

// set stores tr under tr.key, replacing the tree stored there. A tree
// that is compiled later must be set again, for its slot to hold its bytes.
func (m *hostMap[V]) set(tr *tree[V]) {
	tag := tagOf(hashHost(m.seed, tr.key), len(tr.key))
	j := shardOf(tag)
	m.own(j)
	if sh := &m.shards[j]; 4*(sh.n+1) > 3*len(sh.slots) {
		sh.grow()
	}
	sh, i, _ := m.find(tr.key)
	if sh.slots[i].tag == 0 {
		sh.n++
		m.n++
	}
	sh.slots[i] = hostSlot[V]{tag, tr.flat.bytes, tr.flat.routes, tr}
	if m.n == 1 || len(tr.key) < m.minLen {
		m.minLen = len(tr.key)
	}
	m.maxLen = max(m.maxLen, len(tr.key))
}

// grow doubles the shard's slots (16 at first) and places every tree again.
func (sh *hostShard[V]) grow() {
	old := sh.slots
	sh.slots = make([]hostSlot[V], max(16, 2*len(old)))
	mask := uint64(len(sh.slots) - 1)
	for _, s := range old {
		if s.tag == 0 {
			continue
		}
		i := s.tag & mask
		for sh.slots[i].tag != 0 {
			i = (i + 1) & mask
		}
		sh.slots[i] = s
	}
}

// del removes key's tree, if any. The slots after it move back so that no
// probe sequence has a gap (backward-shift deletion), and no tombstones
// are needed.
func (m *hostMap[V]) del(key string) {
	if m.n == 0 {
		return
	}
	sh, i, tag := m.find(key)
	if len(sh.slots) == 0 || sh.slots[i].tag == 0 {
		return
	}
	m.own(shardOf(tag))
	sh.n--
	m.n--
	slots := sh.slots
	mask := uint64(len(slots) - 1)
	for j := i; ; {
		j = (j + 1) & mask
		s := slots[j]
		if s.tag == 0 {
			break
		}
		// s may move to the hole at i unless its home slot lies
		// cyclically in (i, j]: then it is still reachable from home.
		if home := s.tag & mask; (i < j && i < home && home <= j) || (i > j && (i < home || home <= j)) {
			continue
		}
		slots[i] = s
		i = j
	}
	slots[i] = hostSlot[V]{}
}

// clone returns a copy that set and del can change without changing m: it
// shares m's shards, and copies one the first time it changes it. m must not
// change after (a Table's maps never do); clone does not write to m, so
// that Editors of one table may clone its maps at once.
func (m *hostMap[V]) clone() hostMap[V] {
	c := *m
	c.owned = 0
	return c
}

// compile compiles every tree (tree.compile) and stores its bytes and
// routes in its slot.
func (m *hostMap[V]) compile() {
	for j := range m.shards {
		for i := range m.shards[j].slots {
			if s := &m.shards[j].slots[i]; s.tag != 0 {
				m.own(j)
				s = &m.shards[j].slots[i]
				s.tr.compile()
				s.bytes, s.routes = s.tr.flat.bytes, s.tr.flat.routes
			}
		}
	}
}
