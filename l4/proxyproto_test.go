package l4

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseProxyHeader(t *testing.T) {
	ap := netip.MustParseAddrPort
	v2 := func(src, dst string) []byte {
		return appendProxyHeader(nil, 2, ap(src), ap(dst))
	}
	tests := []struct {
		name    string
		in      string
		want    proxyHeader
		wantN   int // 0: the whole input
		wantErr error
	}{
		{"v1 TCP4", "PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\nGET", proxyHeader{src: ap("192.0.2.1:51234"), dst: ap("198.51.100.2:443")}, 45, nil},
		{"v1 TCP6", "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", proxyHeader{src: ap("[2001:db8::1]:1"), dst: ap("[2001:db8::2]:65535")}, 0, nil},
		{"v1 UNKNOWN", "PROXY UNKNOWN\r\n", proxyHeader{local: true}, 0, nil},
		{"v1 UNKNOWN with addresses", "PROXY UNKNOWN ::1 ::1 1 2\r\n", proxyHeader{local: true}, 0, nil},
		{"v2 TCP4", string(v2("192.0.2.1:51234", "198.51.100.2:443")), proxyHeader{src: ap("192.0.2.1:51234"), dst: ap("198.51.100.2:443")}, 0, nil},
		{"v2 TCP6", string(v2("[2001:db8::1]:7", "[2001:db8::2]:8")), proxyHeader{src: ap("[2001:db8::1]:7"), dst: ap("[2001:db8::2]:8")}, 0, nil},
		{"v2 LOCAL", string(appendProxyHeader(nil, 2, netip.AddrPort{}, netip.AddrPort{})), proxyHeader{local: true}, 0, nil},
		{"v2 TCP4 with TLVs", string(withTLV(v2("192.0.2.1:1", "192.0.2.2:2"), []byte{0x04, 0, 3, 'a', 'b', 'c'})), proxyHeader{src: ap("192.0.2.1:1"), dst: ap("192.0.2.2:2")}, 0, nil},

		{"v1 partial", "PROXY TCP4 192.0.2.1", proxyHeader{}, 0, errNeedMore},
		{"v2 partial", string(v2("192.0.2.1:1", "192.0.2.2:2")[:20]), proxyHeader{}, 0, errNeedMore},
		{"no header", "GET / HTTP/1.1\r\n", proxyHeader{}, 0, ErrProxyHeader},
		{"v1 bad family", "PROXY UDP4 1.1.1.1 2.2.2.2 1 2\r\n", proxyHeader{}, 0, ErrProxyHeader},
		{"v1 family mismatch", "PROXY TCP4 ::1 ::1 1 2\r\n", proxyHeader{}, 0, ErrProxyHeader},
		{"v1 bad port", "PROXY TCP4 1.1.1.1 2.2.2.2 01 2\r\n", proxyHeader{}, 0, ErrProxyHeader},
		{"v1 port out of range", "PROXY TCP4 1.1.1.1 2.2.2.2 65536 2\r\n", proxyHeader{}, 0, ErrProxyHeader},
		{"v1 too few fields", "PROXY TCP4 1.1.1.1 2.2.2.2 1\r\n", proxyHeader{}, 0, ErrProxyHeader},
		{"v1 no CRLF within 107 bytes", "PROXY TCP4 " + string(make([]byte, 120)), proxyHeader{}, 0, ErrProxyHeader},
		{"v2 bad version", string(withByte(v2("192.0.2.1:1", "192.0.2.2:2"), 12, 0x11)), proxyHeader{}, 0, ErrProxyHeader},
		{"v2 UDP", string(withByte(v2("192.0.2.1:1", "192.0.2.2:2"), 13, 0x12)), proxyHeader{}, 0, ErrProxyHeader},
		{"v2 oversized", string(withByte(withByte(v2("192.0.2.1:1", "192.0.2.2:2"), 14, 0xff), 15, 0xff)), proxyHeader{}, 0, ErrProxyHeader},
		{"v2 short addresses", string(withByte(v2("192.0.2.1:1", "192.0.2.2:2"), 15, 4)[:20]), proxyHeader{}, 0, ErrProxyHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := parseProxyHeader([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want := tt.wantN
			if want == 0 {
				want = len(tt.in)
			}
			if h != tt.want || n != want {
				t.Errorf("got %+v, %d; want %+v, %d", h, n, tt.want, want)
			}
		})
	}
}

func TestAppendProxyHeaderRoundTrip(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		wantSrc  netip.AddrPort
		wantV1   string
	}{
		{"IPv4", ap("192.0.2.1:5000"), ap("198.51.100.9:443"), ap("192.0.2.1:5000"), "PROXY TCP4 192.0.2.1 198.51.100.9 5000 443\r\n"},
		{"IPv6", ap("[2001:db8::1]:5000"), ap("[2001:db8::9]:443"), ap("[2001:db8::1]:5000"), "PROXY TCP6 2001:db8::1 2001:db8::9 5000 443\r\n"},
		{"mapped IPv4 on a dual-stack socket", ap("[::ffff:192.0.2.1]:5000"), ap("[::ffff:198.51.100.9]:443"), ap("192.0.2.1:5000"), "PROXY TCP4 192.0.2.1 198.51.100.9 5000 443\r\n"},
		{"mixed families", ap("192.0.2.1:5000"), ap("[2001:db8::9]:443"), ap("[::ffff:192.0.2.1]:5000"), "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::9 5000 443\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendProxyHeader(nil, 1, tt.src, tt.dst)); got != tt.wantV1 {
				t.Errorf("v1 = %q, want %q", got, tt.wantV1)
			}
			for _, v := range []int{1, 2} {
				b := appendProxyHeader(nil, v, tt.src, tt.dst)
				h, n, err := parseProxyHeader(b)
				if err != nil || n != len(b) || h.src != tt.wantSrc {
					t.Errorf("v%d round trip: %+v, %d, %v; want src %v", v, h, n, err, tt.wantSrc)
				}
			}
		})
	}
	if got := string(appendProxyHeader(nil, 1, netip.AddrPort{}, netip.AddrPort{})); got != "PROXY UNKNOWN\r\n" {
		t.Errorf("v1 without addresses = %q", got)
	}
}

func withByte(b []byte, i int, v byte) []byte {
	b = append([]byte(nil), b...)
	b[i] = v
	return b
}

func withTLV(b, tlv []byte) []byte {
	b = append(append([]byte(nil), b...), tlv...)
	n := int(b[14])<<8 | int(b[15]) + len(tlv)
	b[14], b[15] = byte(n>>8), byte(n)
	return b
}
