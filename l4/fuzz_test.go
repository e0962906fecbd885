package l4

import (
	"crypto/tls"
	"errors"
	"testing"
)

// FuzzParseProxyHeader: any bytes give a header, "need more", or an error
// wrapping ErrProxyHeader; never a panic, and a header never claims more
// bytes than it was given.
func FuzzParseProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\nGET /"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(append([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"), 192, 0, 2, 1, 198, 51, 100, 2, 0x1f, 0x90, 0x01, 0xbb))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseProxyHeader(b)
		switch {
		case errors.Is(err, errNeedMore):
		case err != nil:
			if !errors.Is(err, ErrProxyHeader) {
				t.Fatalf("error %v does not wrap ErrProxyHeader", err)
			}
		case n <= 0 || n > len(b):
			t.Fatalf("header of %d bytes in %d", n, len(b))
		case !h.local && (!h.src.IsValid() || !h.dst.IsValid()):
			t.Fatalf("a PROXY header without valid addresses: %+v", h)
		}
	})
}

// FuzzParseClientHello: any bytes give a name, "need more", or an error;
// never a panic, and a name is 1 to 255 printable ASCII bytes.
func FuzzParseClientHello(f *testing.F) {
	f.Add(captureHello(f, &tls.Config{ServerName: "app.example.org", InsecureSkipVerify: true}))
	f.Add(resplit(captureHello(f, &tls.Config{ServerName: "app.example.org", InsecureSkipVerify: true}), 7))
	f.Add(captureHello(f, &tls.Config{InsecureSkipVerify: true}))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := parseClientHello(b, 16<<10)
		if err != nil || name == "" {
			return
		}
		if len(name) > maxHostNameLen {
			t.Fatalf("SNI name of %d bytes", len(name))
		}
		for _, c := range []byte(name) {
			if c <= ' ' || c >= 0x7f {
				t.Fatalf("SNI name %q has byte %#x", name, c)
			}
		}
	})
}
