package router

import (
	"math/bits"
	"strings"
)

// This file reads the host name of a request without copying it: Lookup
// hashes and compares the Host header as it is, lower-casing eight bytes at
// a time in registers, instead of lower-casing it into a buffer first.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
	lows  = 0x7f7f7f7f7f7f7f7f
)

// canonicalHost returns the host name of a Host header without port or
// trailing dot, in the case it came in: hashHost and equalFold lower-case
// it as they read it. valid is false for an IPv6 literal, an empty name, or
// a name longer than any route can be; such hosts only reach the default
// backend.
func canonicalHost(host string) (h string, valid bool) {
	if strings.HasPrefix(host, "[") {
		return "", false // IPv6 literal; routes name hosts, not addresses
	}
	if i := lastColon(host); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > maxHostLen {
		return "", false
	}
	return host, true
}

// lastColon is strings.LastIndexByte(s, ':'), eight bytes at a time.
func lastColon(s string) int {
	i := len(s)
	for ; i >= 8; i -= 8 {
		w := get64(s[i-8:]) ^ (':' * ones) // a ':' byte becomes 0
		// The high bit of each zero byte, exactly: adding lows carries
		// into the high bit of every byte whose low seven bits are not
		// all zero, and or-ing w adds those whose high bit is set.
		if z := ^((w&lows + lows) | w | lows); z != 0 {
			return i - 8 + (63-bits.LeadingZeros64(z))/8
		}
	}
	for i--; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

// lower8 lower-cases the ASCII letters among eight bytes at once and
// leaves every other byte as it is. Per byte: the high bit of ge is set if
// its low seven bits are at least 'A', that of gt if they are above 'Z';
// a byte with its own high bit set is not ASCII and stays.
func lower8(x uint64) uint64 {
	low := x &^ highs
	ge := low + (0x80-'A')*ones
	gt := low + (0x80-'Z'-1)*ones
	upper := ge &^ gt &^ x & highs
	return x | upper>>2 // 0x80>>2 is 'a'-'A'
}

// tail returns the lower-cased bytes of s[i:], fewer than eight, padded
// with zeros: for short strings it reads byte by byte, else it reads the
// last eight bytes and shifts out those before i.
func tail(s string, i int) uint64 {
	if len(s) >= 8 {
		return lower8(get64(s[len(s)-8:])) >> (8 * (8 - (len(s) - i)))
	}
	var w uint64
	for j := len(s) - 1; j >= i; j-- {
		w = w<<8 | uint64(s[j])
	}
	return lower8(w)
}

// hashHost hashes s as if it were lower case: a multiply-xorshift over
// eight-byte words. The table's keys are its own routes, never a client's,
// so a client cannot lengthen a probe sequence by choosing hosts; the
// random seed spreads the keys the same way for any set of routes.
func hashHost(seed uint64, s string) uint64 {
	h := seed ^ uint64(len(s))*0x9e3779b97f4a7c15
	i := 0
	for ; i+8 <= len(s); i += 8 {
		h = (h ^ lower8(get64(s[i:]))) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	if i < len(s) {
		h = (h ^ tail(s, i)) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}

// equalFold reports whether key (lower case) equals s lower-cased; both
// have the same length.
func equalFold(key, s string) bool {
	i := 0
	for ; i+8 <= len(key); i += 8 {
		if get64(key[i:]) != lower8(get64(s[i:])) {
			return false
		}
	}
	return i == len(key) || tail(key, i) == tail(s, i)
}
