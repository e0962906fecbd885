package h1wire

import (
	"bufio"
	"bytes"
	"io"
)

// Response is a parsed response head, as a proxy reads it from an upstream.
// Its byte slices alias the buffer it was parsed from. A Response may be
// reused: parsing keeps the capacity of Fields.
type Response struct {
	Minor  int    // HTTP/1.Minor: 0 or 1
	Status int    // 100 to 999
	Reason []byte // the reason phrase, possibly empty
	// StatusText is the status line after the version: the code, and the
	// reason phrase if there is one ("200 OK").
	StatusText []byte

	Fields []Field // every header field line, in order

	// Body is how the body is framed: BodyNone (a response to HEAD, a 1xx,
	// 204 or 304, or Content-Length: 0), BodyLength, BodyChunked, or, when
	// UntilClose is set, BodyNone with the body running to the end of the
	// connection (neither Content-Length nor Transfer-Encoding).
	Body       Body
	UntilClose bool
	// ContentLength is the Content-Length value, -1 without one.
	ContentLength int64

	// Close reports whether the connection closes after this response:
	// HTTP/1.1 with a "close" Connection option, HTTP/1.0 without
	// "keep-alive", or a body that runs to the end of the connection.
	Close bool
}

// Response refusals. The field and framing rules share the request's
// errors (their Status is for a request; a proxy answers 502 to any).
var (
	errStatusLine = &Error{502, "malformed status line: want HTTP/1.1 or HTTP/1.0, SP, a 3-digit status code from 100, then SP and a reason or the line end"}
	errRespLong   = &Error{502, "response status line too long"}
	errRespLarge  = &Error{502, "response head too large"}
	errRespTE     = &Error{502, "Transfer-Encoding in an HTTP/1.0 response"}
)

// ParseResponseHead parses the response head at the start of b into r and
// returns its length, through the empty line that ends it. head reports a
// response to a HEAD request, which has no body whatever its fields say.
// ErrIncomplete means b holds no complete head and breaks no rule so far.
//
// The status line is HTTP-version SP 3DIGIT, then SP and a reason phrase
// (field-value bytes) or nothing (RFC 9112 section 4); the version is
// HTTP/1.1 or HTTP/1.0. Lines end in CRLF; the field rules are those of
// ParseHead (no obs-fold, no whitespace before the colon, no control
// characters in values). Content-Length is digits, several must be
// identical; Transfer-Encoding is one field "chunked", only in HTTP/1.1,
// never with Content-Length; a Trailer field names no framing field.
// A response to HEAD, a 1xx, a 204 and a 304 have no body (section 6.3).
func ParseResponseHead(b []byte, r *Response, head bool, lim Limits) (int, error) {
	lim = lim.withDefaults()
	*r = Response{Fields: r.Fields[:0]}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > lim.MaxLine+1 {
			return 0, errRespLong
		}
		return 0, ErrIncomplete
	}
	if i == 0 || b[i-1] != '\r' {
		return 0, errBareLF
	}
	if i-1 > lim.MaxLine {
		return 0, errRespLong
	}
	if err := r.parseStatusLine(b[:i-1]); err != nil {
		return 0, err
	}
	pos, err := parseFields(b, i+1, &r.Fields, lim, errRespLarge)
	if err != nil {
		return 0, err
	}
	if err := r.frame(head); err != nil {
		return 0, err
	}
	return pos, nil
}

func (r *Response) parseStatusLine(line []byte) error {
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
		r.Minor = 1
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		r.Minor = 0
	default:
		return lineError(line, errStatusLine)
	}
	s := line[9:]
	if len(s) < 3 || !isDigit(s[0]) || s[0] == '0' || !isDigit(s[1]) || !isDigit(s[2]) {
		return lineError(s, errStatusLine)
	}
	r.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	r.StatusText = s
	switch {
	case len(s) == 3:
	case s[3] != ' ':
		return lineError(s, errStatusLine)
	default:
		r.Reason = s[4:]
		if err := checkValue(r.Reason); err != nil {
			return err
		}
	}
	return nil
}

// frame applies the framing rules across fields (RFC 9112 section 6.3).
func (r *Response) frame(head bool) error {
	fr, err := scanFraming(r.Fields)
	if err != nil {
		return err
	}
	tes, cl, closeOpt, keepAlive := fr.tes, fr.cl, fr.close, fr.keepAlive
	switch {
	case tes > 0 && r.Minor == 0:
		return errRespTE
	case tes > 1:
		return errTE
	case tes == 1 && cl != nil:
		return errCLTE
	}
	r.ContentLength = -1
	if cl != nil {
		r.ContentLength, _ = parseLength(cl)
	}
	r.Close = r.Minor == 1 && closeOpt || r.Minor == 0 && (closeOpt || !keepAlive)
	switch {
	case head, r.Status < 200, r.Status == 204, r.Status == 304:
	case tes == 1:
		r.Body = BodyChunked
	case cl != nil:
		if r.ContentLength > 0 {
			r.Body = BodyLength
		}
	default:
		r.UntilClose, r.Close = true, true
	}
	return nil
}

// ReadResponseHead reads a response head from br into r with
// ParseResponseHead and consumes it, leaving br at the body. While the head
// fits in br's buffer, r's slices alias it (valid until the next read from
// br); a longer head, up to lim.MaxHeaderBytes, is gathered in *spill,
// which r then aliases. A connection closed before the first byte is
// io.EOF, inside the head io.ErrUnexpectedEOF.
func ReadResponseHead(br *bufio.Reader, r *Response, head bool, lim Limits, spill *[]byte) error {
	lim = lim.withDefaults()
	if _, err := br.Peek(1); err != nil {
		return err
	}
	seen := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		if seen == 0 || bytes.IndexByte(buf[seen:], '\n') >= 0 || len(buf) >= lim.MaxHeaderBytes {
			n, err := ParseResponseHead(buf, r, head, lim)
			if err == nil {
				_, _ = br.Discard(n)
				return nil
			}
			if err != ErrIncomplete {
				return err
			}
		}
		seen = len(buf)
		if len(buf) >= br.Size() {
			return readSpilled(br, r, head, lim, spill)
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
}

// readSpilled goes on reading a head too large for br's buffer into
// *spill, a line at a time, and parses it at its empty line.
func readSpilled(br *bufio.Reader, r *Response, head bool, lim Limits, spill *[]byte) error {
	b := (*spill)[:0]
	defer func() { *spill = b }()
	for {
		line, err := br.ReadSlice('\n')
		b = append(b, line...)
		if len(b) > lim.MaxHeaderBytes {
			if bytes.IndexByte(b, '\n') < 0 {
				return errRespLong
			}
			return errRespLarge
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		case err != nil:
			return err
		case len(line) > 2 || line[0] != '\r' && line[0] != '\n':
			continue // not the empty line that ends the head
		}
		n, err := ParseResponseHead(b, r, head, lim)
		if err == nil {
			if n != len(b) {
				return errRespLarge // cannot happen: the head ends at a line end
			}
			return nil
		}
		if err != ErrIncomplete {
			return err
		}
	}
}
