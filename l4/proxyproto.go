package l4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// PROXY protocol (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).

// ErrProxyHeader is returned for a missing or malformed PROXY header from a
// trusted peer.
var ErrProxyHeader = errors.New("bad PROXY protocol header")

const (
	proxyV1MaxLen = 107 // section 2.1: the longest TCP6 line with CRLF
	proxyV2HdrLen = 16
	// proxyV2MaxLen bounds what we buffer for a v2 header. The format allows
	// 64 KiB of TLVs; load balancers send a few dozen bytes (AWS and GCP add
	// one small TLV), so anything this large is hostile.
	proxyV2MaxLen = 2048
	maxProxyLen   = proxyV2MaxLen
)

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyHeader is a parsed PROXY header. local is true for v2 LOCAL and v1
// UNKNOWN: the sender speaks for itself (health checks) and the connection's
// own addresses stay in force.
type proxyHeader struct {
	src, dst netip.AddrPort
	local    bool
}

// parseProxyHeader parses a v1 or v2 header at the start of b and returns it
// with the number of bytes it occupies. It returns errNeedMore while b is a
// valid but incomplete prefix, and an error wrapping ErrProxyHeader otherwise.
func parseProxyHeader(b []byte) (proxyHeader, int, error) {
	switch {
	case len(b) == 0:
		return proxyHeader{}, 0, errNeedMore
	case b[0] == 'P':
		return parseProxyV1(b)
	case b[0] == '\r':
		return parseProxyV2(b)
	}
	return proxyHeader{}, 0, fmt.Errorf("%w: no PROXY signature", ErrProxyHeader)
}

func parseProxyV1(b []byte) (proxyHeader, int, error) {
	const sig = "PROXY "
	if n := min(len(b), len(sig)); string(b[:n]) != sig[:n] {
		return proxyHeader{}, 0, fmt.Errorf("%w: no PROXY signature", ErrProxyHeader)
	}
	end := bytes.Index(b[:min(len(b), proxyV1MaxLen)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= proxyV1MaxLen {
			return proxyHeader{}, 0, fmt.Errorf("%w: v1 line longer than %d bytes", ErrProxyHeader, proxyV1MaxLen)
		}
		return proxyHeader{}, 0, errNeedMore
	}
	f := bytes.Split(b[len(sig):end], []byte(" "))
	bad := func(why string) (proxyHeader, int, error) {
		return proxyHeader{}, 0, fmt.Errorf("%w: v1 %s", ErrProxyHeader, why)
	}
	switch string(f[0]) {
	case "UNKNOWN": // section 2.1: the rest of the line is to be ignored
		return proxyHeader{local: true}, end + 2, nil
	case "TCP4", "TCP6":
	default:
		return bad("protocol " + strconv.Quote(string(f[0])))
	}
	if len(f) != 5 {
		return bad("field count")
	}
	src, err1 := netip.ParseAddr(string(f[1]))
	dst, err2 := netip.ParseAddr(string(f[2]))
	if err1 != nil || err2 != nil || src.Is4() != (string(f[0]) == "TCP4") || dst.Is4() != src.Is4() {
		return bad("addresses")
	}
	sport, ok1 := parsePort(f[3])
	dport, ok2 := parsePort(f[4])
	if !ok1 || !ok2 {
		return bad("ports")
	}
	return proxyHeader{src: netip.AddrPortFrom(src, sport), dst: netip.AddrPortFrom(dst, dport)}, end + 2, nil
}

// parsePort parses a decimal port without sign or leading zeros (section 2.1).
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(n), err == nil
}

func parseProxyV2(b []byte) (proxyHeader, int, error) {
	if n := min(len(b), len(proxyV2Sig)); !bytes.Equal(b[:n], proxyV2Sig[:n]) {
		return proxyHeader{}, 0, fmt.Errorf("%w: no PROXY signature", ErrProxyHeader)
	}
	if len(b) < proxyV2HdrLen {
		return proxyHeader{}, 0, errNeedMore
	}
	verCmd, fam := b[12], b[13]
	n := proxyV2HdrLen + int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return proxyHeader{}, 0, fmt.Errorf("%w: v2 version %d", ErrProxyHeader, verCmd>>4)
	}
	if n > proxyV2MaxLen {
		return proxyHeader{}, 0, fmt.Errorf("%w: v2 header of %d bytes", ErrProxyHeader, n)
	}
	if len(b) < n {
		return proxyHeader{}, 0, errNeedMore
	}
	body := b[proxyV2HdrLen:n]
	switch verCmd & 0x0f {
	case 0x0: // LOCAL: addresses, if any, are to be ignored
		return proxyHeader{local: true}, n, nil
	case 0x1: // PROXY
	default:
		return proxyHeader{}, 0, fmt.Errorf("%w: v2 command %d", ErrProxyHeader, verCmd&0x0f)
	}
	switch fam {
	case 0x11: // TCP over IPv4
		return v2Addrs(body, 4, "TCP4", n)
	case 0x21: // TCP over IPv6
		return v2Addrs(body, 16, "TCP6", n)
	case 0x00: // UNSPEC: the sender does not know; keep the real addresses
		return proxyHeader{local: true}, n, nil
	}
	return proxyHeader{}, 0, fmt.Errorf("%w: v2 family %#x is not TCP", ErrProxyHeader, fam)
}

// appendProxyHeader appends a PROXY header of the given version (1 or 2)
// announcing a connection from src to dst. When one side is IPv4 and the
// other IPv6, both are sent as IPv6 (the IPv4 one mapped), since the format
// has one family per header. Invalid addresses yield v1 UNKNOWN or v2 LOCAL.
func appendProxyHeader(b []byte, version int, src, dst netip.AddrPort) []byte {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	valid := src.IsValid() && dst.IsValid()
	v4 := sa.Is4() && da.Is4()
	if !v4 {
		sa, da = as16(sa), as16(da)
	}
	if version == 1 {
		if !valid {
			return append(b, "PROXY UNKNOWN\r\n"...)
		}
		proto := "TCP6 "
		if v4 {
			proto = "TCP4 "
		}
		b = append(b, "PROXY "...)
		b = append(b, proto...)
		b = sa.AppendTo(b)
		b = append(b, ' ')
		b = da.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, "\r\n"...)
	}
	b = append(b, proxyV2Sig...)
	switch {
	case !valid:
		return append(b, 0x20, 0x00, 0, 0) // LOCAL, UNSPEC, no addresses
	case v4:
		b = append(b, 0x21, 0x11, 0, 12)
		a4, d4 := sa.As4(), da.As4()
		b = append(b, a4[:]...)
		b = append(b, d4[:]...)
	default:
		b = append(b, 0x21, 0x21, 0, 36)
		a16, d16 := sa.As16(), da.As16()
		b = append(b, a16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

func as16(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

// v2Addrs reads the source and destination addresses and ports of a v2
// header whose addresses are size bytes long; n is the header's length.
func v2Addrs(body []byte, size int, fam string, n int) (proxyHeader, int, error) {
	if len(body) < 2*size+4 {
		return proxyHeader{}, 0, fmt.Errorf("%w: v2 short %s addresses", ErrProxyHeader, fam)
	}
	src, _ := netip.AddrFromSlice(body[:size])
	dst, _ := netip.AddrFromSlice(body[size : 2*size])
	ports := body[2*size:]
	return proxyHeader{
		src: netip.AddrPortFrom(src, binary.BigEndian.Uint16(ports[0:2])),
		dst: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(ports[2:4])),
	}, n, nil
}
