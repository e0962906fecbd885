package h1wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxChunkLine bounds a chunk size line, CRLF included: net/http refuses
// longer ones too, and a line must fit in a bufio.Reader's default buffer.
const maxChunkLine = 4096

// ChunkedReader decodes a chunked body (RFC 9112 section 7.1) from a
// bufio.Reader positioned after the head: Read returns the data, io.EOF
// after the last chunk and the trailer section. A chunk size is 1 to 16 hex
// digits and at most 2^63-1; extensions are ";name" or ";name=value" with a
// token or quoted-string value and no whitespace; a line ends in CRLF; chunk
// data is followed by CRLF; trailer fields follow the header field rules and
// never name a framing field. Like net/http it refuses a body whose chunk
// lines outweigh its data (more than 16 bytes per chunk and twice the data,
// by 16 KiB).
//
// A line must fit in the bufio.Reader's buffer: one of less than
// maxChunkLine (4096, bufio's default) bounds chunk lines more tightly.
//
// The zero value is not usable; call Reset. A ChunkedReader may be reused
// for another body after Reset, keeping its trailer buffer.
type ChunkedReader struct {
	br  *bufio.Reader
	lim Limits

	state  chunkState
	left   int64 // data bytes left in the current chunk
	excess int64 // chunk line bytes beyond what the data pays for
	err    error

	trailer []byte // the trailer section's lines, CRLF included

	// Trailer holds the trailer fields once Read has returned io.EOF.
	// They alias the reader's own buffer, valid until the next Reset.
	Trailer []Field
}

type chunkState uint8

const (
	stateSize    chunkState = iota // before a chunk size line
	stateData                      // in chunk data
	stateCRLF                      // after chunk data
	stateTrailer                   // after the last chunk
	stateDone
)

// Reset makes c read a new body from br.
func (c *ChunkedReader) Reset(br *bufio.Reader, lim Limits) {
	*c = ChunkedReader{br: br, lim: lim.withDefaults(), trailer: c.trailer[:0], Trailer: c.Trailer[:0]}
}

// Read reads chunk data into p. Errors other than the reader's are *Error
// values; a body cut short is io.ErrUnexpectedEOF.
func (c *ChunkedReader) Read(p []byte) (int, error) {
	for c.err == nil {
		switch c.state {
		case stateSize:
			c.err = c.readSize()
		case stateData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > c.left {
				p = p[:c.left]
			}
			n, err := c.br.Read(p)
			c.left -= int64(n)
			if c.left == 0 {
				c.state = stateCRLF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				c.err = err
			}
			if n > 0 {
				return n, nil
			}
		case stateCRLF:
			crlf, err := c.br.Peek(2)
			if len(crlf) == 2 && (crlf[0] != '\r' || crlf[1] != '\n') {
				c.err = errChunkEnd
				break
			}
			if err != nil {
				c.err = unexpected(err)
				break
			}
			_, _ = c.br.Discard(2)
			c.state = stateSize
		case stateTrailer:
			c.err = c.readTrailer()
		case stateDone:
			c.err = io.EOF
		}
	}
	return 0, c.err
}

// unexpected is err, with io.EOF read as a body cut short.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine reads a line that must end in CRLF and be at most max bytes
// with it, and returns it without the CRLF; tooLong is the error beyond.
func (c *ChunkedReader) readLine(max int, tooLong error) ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > max:
		return nil, tooLong
	case err != nil:
		return nil, unexpected(err)
	case len(line) < 2 || line[len(line)-2] != '\r':
		return nil, errBareLF
	}
	line = line[:len(line)-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, errBareCR
	}
	return line, nil
}

// readSize reads a chunk size line: chunk-size [ chunk-ext ] CRLF.
func (c *ChunkedReader) readSize() error {
	line, err := c.readLine(maxChunkLine, errChunkLine)
	if err != nil {
		return err
	}
	var n uint64
	i := 0
	for ; i < len(line) && hexval[line[i]] >= 0; i++ {
		if i == 16 || n > (1<<63-1)>>4 {
			return errChunkOverflow
		}
		n = n<<4 | uint64(hexval[line[i]])
	}
	if i == 0 || !validChunkExt(line[i:]) {
		return errChunkSize
	}
	// net/http's rule: 16 bytes of overhead per chunk and twice the
	// chunk's data are free; beyond that, at most 16 KiB in all.
	c.excess += int64(len(line)) + 2
	c.excess -= 16 + 2*int64(min(n, 1<<62))
	c.excess = max(c.excess, 0)
	if c.excess > 16<<10 {
		return errChunkOverhead
	}
	if n == 0 {
		c.state = stateTrailer
		return nil
	}
	c.left, c.state = int64(n), stateData
	return nil
}

// validChunkExt reports whether e is *( ";" token [ "=" ( token /
// quoted-string ) ] ).
func validChunkExt(e []byte) bool {
	for len(e) > 0 {
		if e[0] != ';' {
			return false
		}
		e = e[1:]
		n := tokenLen(e)
		if n == 0 {
			return false
		}
		e = e[n:]
		if len(e) == 0 || e[0] != '=' {
			continue
		}
		e = e[1:]
		if n = tokenLen(e); n == 0 {
			if n = quotedLen(e); n == 0 {
				return false
			}
		}
		e = e[n:]
	}
	return true
}

func tokenLen(b []byte) int {
	n := 0
	for n < len(b) && tchar[b[n]] {
		n++
	}
	return n
}

// quotedLen returns the length of the quoted-string at the start of b
// (RFC 9110 section 5.6.4), or 0.
func quotedLen(b []byte) int {
	if len(b) < 2 || b[0] != '"' {
		return 0
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 == len(b) || !vchar[b[i+1]] {
				return 0
			}
			i++
		case !vchar[c]:
			return 0
		}
	}
	return 0
}

// readTrailer reads the trailer section up to its empty line and parses
// its fields into c.Trailer.
func (c *ChunkedReader) readTrailer() error {
	for {
		room := c.lim.MaxTrailerBytes - len(c.trailer)
		line, err := c.readLine(room, errTrailerSize)
		if err != nil {
			return err
		}
		c.trailer = append(c.trailer, line...)
		c.trailer = append(c.trailer, '\r', '\n')
		if len(line) == 0 {
			break
		}
	}
	for t := c.trailer; len(t) > 2; {
		i := bytes.IndexByte(t, '\n')
		if len(c.Trailer) == c.lim.MaxFields {
			return errTooMany
		}
		f, err := parseField(t[:i-1])
		if err != nil {
			return err
		}
		if forbiddenTrailer(f.Name) {
			return errTrailerName
		}
		c.Trailer = append(c.Trailer, f)
		t = t[i+1:]
	}
	c.state = stateDone
	return nil
}
