package router

import "math/bits"

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
	if host != "" && host[0] == '[' {
		return "", false // IPv6 literal; routes name hosts, not addresses
	}
	if i := lastColon(host); i >= 0 {
		host = host[:i]
	}
	if host != "" && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if host == "" || len(host) > maxHostLen {
		return "", false
	}
	return host, true
}

// zeroBytes returns the high bit of each zero byte of w, exactly: adding
// lows carries into the high bit of every byte whose low seven bits are not
// all zero, and or-ing w adds those whose high bit is set.
func zeroBytes(w uint64) uint64 { return ^((w&lows + lows) | w | lows) }

// lastColon is strings.LastIndexByte(s, ':'), eight bytes at a time from
// the end; the first bytes of a string longer than eight are read in the
// same eight-byte word as the bytes after them, without a loop by byte.
func lastColon(s string) int {
	const colons = ':' * ones
	i := len(s)
	if i < 8 {
		for i--; i >= 0; i-- {
			if s[i] == ':' {
				return i
			}
		}
		return -1
	}
	for ; i >= 8; i -= 8 {
		if z := zeroBytes(get64(s[i-8:i]) ^ colons); z != 0 {
			return i - 8 + (63-bits.LeadingZeros64(z))/8
		}
	}
	if z := zeroBytes(get64(s)^colons) & (1<<(8*i) - 1); z != 0 { // bytes 0 to i-1
		return (63 - bits.LeadingZeros64(z)) / 8
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

// short returns the lower-cased bytes of s, shorter than eight, as a word
// padded with zeros.
func short(s string) uint64 { return lower8(word(s)) }

// Odd constants of the wyhash family, which hashHost mixes with.
const (
	hashK0 = 0xa0761d6478bd642f
	hashK1 = 0xe7037ed1a0b428db
	hashK2 = 0x8ebc6af09c88c6e3
)

// mix is wyhash's mixing step: the two halves of the 128-bit product of a
// and b, xored.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hashHost hashes s as if it were lower case, with the structure of
// wyhash (and of the Go runtime's hash without AES): one 128-bit multiply
// per sixteen bytes, the last sixteen read as two words that may overlap
// the bytes before them, so that a host of up to 32 bytes costs three
// multiplies in a row. The table's keys are its own routes, never a
// client's, so a client cannot lengthen a probe sequence by choosing hosts;
// the random seed spreads the keys the same way for any set of routes.
func hashHost(seed uint64, s string) uint64 {
	n := len(s)
	seed ^= hashK0
	var a, b uint64
	switch {
	case n < 8:
		a = short(s)
		b = a
	case n <= 16:
		a = lower8(get64(s))
		b = lower8(get64(s[n-8 : n]))
	default:
		i := 0
		for ; n-i > 16; i += 16 {
			seed = mix(lower8(get64(s[i:i+8]))^hashK1, lower8(get64(s[i+8:i+16]))^seed)
		}
		// The last sixteen bytes, overlapping the block before them.
		a = lower8(get64(s[n-16 : n-8]))
		b = lower8(get64(s[n-8 : n]))
	}
	return mix(hashK2^uint64(n), mix(a^hashK1, b^seed))
}

// equalFold reports whether key (lower case) equals s lower-cased; both
// have the same length. A key is compared to a host when their hashes
// agree, so almost always to its own host: every word is compared, without
// a branch until the last.
func equalFold(key, s string) bool {
	n := len(key)
	if n < 8 {
		return short(key) == short(s)
	}
	var diff uint64
	for i := 0; i < n-8; i += 8 {
		diff |= get64(key[i:i+8]) ^ lower8(get64(s[i:i+8]))
	}
	return diff|(get64(key[n-8:n])^lower8(get64(s[n-8:n]))) == 0
}
