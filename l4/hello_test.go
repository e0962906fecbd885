package l4

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// captureHello runs a real crypto/tls client handshake into a pipe and
// returns the bytes of its first flight (the ClientHello records), read by
// record headers only so the capture does not depend on the parser.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(c, cfg).Handshake() // fails once s closes
	}()
	var out []byte
	hdr := make([]byte, recordHeaderLen)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatalf("reading record header: %v", err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatalf("reading record: %v", err)
	}
	out = append(append(out, hdr...), body...)
	s.Close()
	c.Close()
	<-done
	return out
}

// resplit re-frames a single-record ClientHello as handshake records of at
// most size bytes of payload each, as a TLS stack may legally send it.
func resplit(rec []byte, size int) []byte {
	msg := rec[recordHeaderLen:]
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, recordTypeHandshake, rec[1], rec[2], byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func TestParseClientHello(t *testing.T) {
	withSNI := captureHello(t, &tls.Config{ServerName: "db.example.org"})
	noSNI := captureHello(t, &tls.Config{InsecureSkipVerify: true})
	big := captureHello(t, &tls.Config{ServerName: "x.example.org", NextProtos: []string{strings.Repeat("p", 255), strings.Repeat("q", 255)}})
	t.Logf("ClientHello sizes: %d bytes with SNI, %d without, %d with long ALPN", len(withSNI), len(noSNI), len(big))

	tests := []struct {
		name    string
		in      []byte
		limit   int
		wantSNI string
		wantErr error // nil: success; errNeedMore: incomplete
	}{
		{"valid", withSNI, 16 << 10, "db.example.org", nil},
		{"valid with trailing data", append(bytes.Clone(withSNI), 0x14, 3, 3, 0, 1, 1), 16 << 10, "db.example.org", nil},
		{"no SNI", noSNI, 16 << 10, "", nil},
		{"split into 100-byte records", resplit(withSNI, 100), 16 << 10, "db.example.org", nil},
		{"split into 1-byte records", resplit(withSNI, 1), 16 << 10, "db.example.org", nil},
		{"spans two records", resplit(big, len(big)/2+1), 16 << 10, "x.example.org", nil},
		{"truncated record header", withSNI[:3], 16 << 10, "", errNeedMore},
		{"truncated body", withSNI[:len(withSNI)-1], 16 << 10, "", errNeedMore},
		{"truncated second record", resplit(withSNI, 200)[:300], 16 << 10, "", errNeedMore},
		{"empty", nil, 16 << 10, "", errNeedMore},
		{"oversized", withSNI, len(withSNI) - 10, "", ErrHelloTooLarge},
		{"oversized declared length", []byte{0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, 16 << 10, "", ErrHelloTooLarge},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 16 << 10, "", ErrNotTLS},
		{"SSH banner", []byte("SSH-2.0-OpenSSH_9.6\r\n"), 16 << 10, "", ErrNotTLS},
		{"record version 2", []byte{0x16, 2, 0}, 16 << 10, "", ErrNotTLS},
		{"alert record", []byte{0x15, 3, 3, 0, 2, 2, 40}, 16 << 10, "", ErrNotTLS},
		{"zero-length record", []byte{0x16, 3, 1, 0, 0}, 16 << 10, "", ErrHelloMalformed},
		{"server hello", []byte{0x16, 3, 3, 0, 4, 2, 0, 0, 0}, 16 << 10, "", ErrHelloMalformed},
		{"garbage body", []byte{0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}, 16 << 10, "", ErrHelloMalformed},
		{"application data between fragments", append(resplit(withSNI, 100)[:105], 0x17, 3, 3, 0, 1, 0), 16 << 10, "", ErrHelloMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sni, err := parseClientHello(tt.in, tt.limit)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if sni != tt.wantSNI {
				t.Errorf("sni = %q, want %q", sni, tt.wantSNI)
			}
		})
	}

	// Every proper prefix of a valid stream is a valid prefix: the parser
	// asks for more bytes and never misreads a partial record.
	stream := resplit(big, 300)
	for i := range len(stream) {
		if _, err := parseClientHello(stream[:i], 16<<10); err != errNeedMore {
			t.Fatalf("prefix of %d bytes: err = %v, want errNeedMore", i, err)
		}
	}
}

// TestPeekHello drives peekHello over real connections: a pipe that
// delivers the bytes in small writes (as TCP segments would), one that
// stops short, one that stalls, and one that sends too much.
func TestPeekHello(t *testing.T) {
	hello := captureHello(t, &tls.Config{ServerName: "Db.Example.Org"})
	tests := []struct {
		name    string
		chunks  [][]byte // written in order; the writer then closes unless stall
		stall   bool
		limit   int
		wantSNI string
		wantErr error
	}{
		{"one write", [][]byte{hello}, false, 16 << 10, "Db.Example.Org", nil},
		{"byte-sized segments", splitEvery(hello, 7), false, 16 << 10, "Db.Example.Org", nil},
		{"split records in segments", splitEvery(resplit(hello, 50), 33), false, 16 << 10, "Db.Example.Org", nil},
		{"closed mid-hello", [][]byte{hello[:40]}, false, 16 << 10, "", ErrHelloTruncated},
		{"stalls mid-hello", [][]byte{hello[:40]}, true, 16 << 10, "", os.ErrDeadlineExceeded},
		{"over the limit", [][]byte{resplit(hello, 20)}, false, len(hello) + 10, "", ErrHelloTooLarge},
		{"not TLS", [][]byte{[]byte("PING\r\n")}, false, 16 << 10, "", ErrNotTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := net.Pipe()
			defer s.Close()
			go func() {
				for _, ch := range tt.chunks {
					if _, err := c.Write(ch); err != nil {
						return
					}
				}
				if !tt.stall {
					c.Close()
				}
			}()
			defer c.Close()
			buf, sni, err := peekHello(s, make([]byte, 0, tt.limit), 100*time.Millisecond)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if sni != tt.wantSNI {
				t.Errorf("sni = %q, want %q", sni, tt.wantSNI)
			}
			if !bytes.HasPrefix(bytes.Join(tt.chunks, nil), buf) {
				t.Errorf("peeked bytes are not a prefix of the stream")
			}
		})
	}
}

func splitEvery(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}
