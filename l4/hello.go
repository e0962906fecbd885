package l4

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Errors from reading a ClientHello. Callers tell them apart with errors.Is.
var (
	ErrNotTLS         = errors.New("not a TLS handshake")
	ErrHelloMalformed = errors.New("malformed ClientHello")
	ErrHelloTooLarge  = errors.New("ClientHello larger than the peek limit")
	ErrHelloTruncated = errors.New("connection ended inside the ClientHello")

	// errNeedMore is internal: the bytes so far are a valid prefix.
	errNeedMore = errors.New("need more bytes")
)

// TLS wire constants (RFC 8446 sections 4 and 5, RFC 6066 section 3).
const (
	recordHeaderLen     = 5
	recordTypeHandshake = 0x16
	maxPlaintextRecord  = 1 << 14 // RFC 8446 section 5.1
	handshakeHeaderLen  = 4
	typeClientHello     = 0x01
	extServerName       = 0x0000
	nameTypeHostName    = 0x00
	maxHostNameLen      = 255
)

// parseClientHello reads the SNI host name from the start of a TLS stream in b.
// It reassembles the handshake message from as many handshake records as it
// spans (a record may also arrive split across TCP segments: b is simply
// shorter). It returns errNeedMore while b is a valid but incomplete prefix,
// ErrHelloTooLarge when the ClientHello would not fit in limit bytes of
// stream, and an empty name (no error) for a ClientHello without SNI.
//
// It is a pure function so that the peek loop and the tests drive the same
// code, and it never reads past a length it has not checked against b.
func parseClientHello(b []byte, limit int) (string, error) {
	if len(b) == 0 {
		return "", errNeedMore
	}
	if b[0] != recordTypeHandshake {
		return "", ErrNotTLS
	}
	// Reassemble the handshake message from the record fragments.
	var msg []byte
	want := -1 // handshake message length including its header, once known
	for off := 0; ; {
		if len(b)-off < recordHeaderLen {
			if err := checkRecordPrefix(b[off:]); err != nil {
				return "", err
			}
			return "", errNeedMore
		}
		h := b[off : off+recordHeaderLen]
		if err := checkRecordPrefix(h); err != nil {
			return "", err
		}
		n := int(h[3])<<8 | int(h[4])
		if n == 0 || n > maxPlaintextRecord {
			return "", fmt.Errorf("%w: record length %d", ErrHelloMalformed, n)
		}
		end := off + recordHeaderLen + n
		msg = append(msg, b[off+recordHeaderLen:min(end, len(b))]...)
		if want < 0 && len(msg) >= handshakeHeaderLen {
			if msg[0] != typeClientHello {
				return "", fmt.Errorf("%w: handshake type %d", ErrHelloMalformed, msg[0])
			}
			want = handshakeHeaderLen + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			// Reject at once rather than buffer a message that cannot fit:
			// the stream needs at least one record header more than this.
			if want+recordHeaderLen > limit {
				return "", fmt.Errorf("%w: %d bytes", ErrHelloTooLarge, want)
			}
		}
		if want >= 0 && len(msg) >= want {
			return parseHelloBody(msg[handshakeHeaderLen:want])
		}
		if end >= len(b) {
			return "", errNeedMore
		}
		off = end
	}
}

// checkRecordPrefix validates as much of a record header as b holds: the
// content type must be handshake and the major version 3 (SSL 3.0 to TLS 1.3
// all write 0x03 there; RFC 8446 section 5.1).
func checkRecordPrefix(b []byte) error {
	if b[0] != recordTypeHandshake {
		return fmt.Errorf("%w: record type %d inside the handshake", ErrHelloMalformed, b[0])
	}
	if len(b) > 1 && b[1] != 0x03 {
		return fmt.Errorf("%w: record version %d.x", ErrNotTLS, b[1])
	}
	return nil
}

// parseHelloBody walks a complete ClientHello body (RFC 8446 section 4.1.2)
// to the server_name extension.
func parseHelloBody(b []byte) (string, error) {
	r := reader(b)
	var ok bool
	var sessionID, suites, compression, exts reader
	ok = r.skip(2+32) && // legacy_version, random
		r.vec8(&sessionID) && len(sessionID) <= 32 &&
		r.vec16(&suites) && len(suites) >= 2 && len(suites)%2 == 0 &&
		r.vec8(&compression) && len(compression) >= 1
	if !ok {
		return "", fmt.Errorf("%w: bad header fields", ErrHelloMalformed)
	}
	if len(r) == 0 {
		return "", nil // no extensions at all (legal before TLS 1.3)
	}
	if !r.vec16(&exts) || len(r) != 0 {
		return "", fmt.Errorf("%w: bad extensions block", ErrHelloMalformed)
	}
	for len(exts) > 0 {
		var typ uint16
		var data reader
		if !exts.u16(&typ) || !exts.vec16(&data) {
			return "", fmt.Errorf("%w: bad extension", ErrHelloMalformed)
		}
		if typ != extServerName {
			continue
		}
		var list reader
		if !data.vec16(&list) || len(data) != 0 {
			return "", fmt.Errorf("%w: bad server_name extension", ErrHelloMalformed)
		}
		for len(list) > 0 {
			var nameType uint8
			var name reader
			if !list.u8(&nameType) || !list.vec16(&name) {
				return "", fmt.Errorf("%w: bad server_name entry", ErrHelloMalformed)
			}
			if nameType != nameTypeHostName {
				continue
			}
			if len(name) == 0 || len(name) > maxHostNameLen {
				return "", fmt.Errorf("%w: host name of %d bytes", ErrHelloMalformed, len(name))
			}
			for _, c := range name {
				if c <= ' ' || c >= 0x7f {
					return "", fmt.Errorf("%w: host name has byte %#x", ErrHelloMalformed, c)
				}
			}
			return string(name), nil
		}
		return "", nil
	}
	return "", nil
}

// reader consumes big-endian fields from a byte slice; each method reports
// false, consuming nothing useful, when the slice is too short.
type reader []byte

func (r *reader) skip(n int) bool {
	if len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

func (r *reader) u8(v *uint8) bool {
	if len(*r) < 1 {
		return false
	}
	*v = (*r)[0]
	*r = (*r)[1:]
	return true
}

func (r *reader) u16(v *uint16) bool {
	if len(*r) < 2 {
		return false
	}
	*v = uint16((*r)[0])<<8 | uint16((*r)[1])
	*r = (*r)[2:]
	return true
}

func (r *reader) vec8(v *reader) bool {
	var n uint8
	if !r.u8(&n) || len(*r) < int(n) {
		return false
	}
	*v, *r = (*r)[:n], (*r)[n:]
	return true
}

func (r *reader) vec16(v *reader) bool {
	var n uint16
	if !r.u16(&n) || len(*r) < int(n) {
		return false
	}
	*v, *r = (*r)[:n], (*r)[n:]
	return true
}

// peekHello reads from c until buf holds a whole ClientHello (or proves that
// it cannot), with a deadline of timeout. buf holds bytes already read (for
// example after a PROXY header) and its capacity bounds the peek. It returns
// every byte read, which the caller replays, and the SNI host name.
func peekHello(c net.Conn, buf []byte, timeout time.Duration) ([]byte, string, error) {
	limit := cap(buf)
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return buf, "", fmt.Errorf("l4: peek: %w", err)
	}
	defer c.SetReadDeadline(time.Time{})
	for {
		sni, err := parseClientHello(buf, limit)
		if err != errNeedMore {
			return buf, sni, err
		}
		if len(buf) == limit {
			return buf, "", ErrHelloTooLarge
		}
		n, rerr := c.Read(buf[len(buf):limit])
		buf = buf[:len(buf)+n]
		if rerr != nil && n == 0 {
			if errors.Is(rerr, net.ErrClosed) || isEOF(rerr) {
				return buf, "", ErrHelloTruncated
			}
			return buf, "", fmt.Errorf("l4: peek ClientHello: %w", rerr)
		}
	}
}
