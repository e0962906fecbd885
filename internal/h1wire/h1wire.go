// Package h1wire reads HTTP/1.1 request framing strictly: the request line,
// the header section, and the body's length or chunked coding (RFC 9112
// sections 2 to 7, RFC 9110 section 5.5), refusing every message that a
// second parser (an upstream, a cache, another proxy) could frame
// differently. It is a pure parser over byte slices and a bufio.Reader: no
// goroutines, no I/O of its own, and no allocation per request or header
// once a Request's Fields have grown to fit.
//
// ParseHead parses a complete head from a buffer; ReadHead does it on a
// bufio.Reader; ChunkedReader decodes a chunked body. Refusals are *Error
// values whose Status is the response to send (400, 414, 431, 505).
package h1wire

import (
	"errors"
	"strconv"
)

// Field is one header (or trailer) field line: its name as sent and its
// value without leading and trailing whitespace. Both alias the buffer the
// head was parsed from.
type Field struct {
	Name, Value []byte
}

// Body is how a request's body is framed (RFC 9112 section 6.3).
type Body uint8

const (
	BodyNone    Body = iota // no Content-Length or Transfer-Encoding: no body
	BodyLength              // Content-Length bytes follow the head
	BodyChunked             // a chunked body follows: read it with a ChunkedReader
)

func (b Body) String() string {
	switch b {
	case BodyLength:
		return "length"
	case BodyChunked:
		return "chunked"
	}
	return "none"
}

// Form is the form of a request-target (RFC 9112 section 3.2).
type Form uint8

const (
	OriginForm    Form = iota // "/path?query"
	AbsoluteForm              // "http://host/path?query"
	AuthorityForm             // "host:port", only with CONNECT
	AsteriskForm              // "*", only with OPTIONS
)

// Request is a parsed request head. Every byte slice in it aliases the
// buffer it was parsed from and is valid as long as that buffer is. A
// Request may be reused for the next head: ParseHead keeps the capacity of
// Fields, so that a pooled Request parses without allocating.
type Request struct {
	Method []byte
	Target []byte // the request-target as sent
	Form   Form
	// Path and Query split Target: the path ("" for an absolute-form
	// target without one, and for authority and asterisk forms) and the
	// query after "?" (nil if there is no "?").
	Path, Query []byte
	Minor       int // HTTP/1.Minor: 0 or 1

	// Host is the Host field's value; for an HTTP/1.0 request without a
	// Host field, the authority of an absolute-form or authority-form
	// target, else empty.
	Host []byte

	Fields []Field // every header field line, in order, Host included

	Body          Body
	ContentLength int64 // with BodyLength

	// Close reports whether the connection closes after this exchange:
	// HTTP/1.1 with a "close" Connection option, or HTTP/1.0 without
	// "keep-alive" (RFC 9112 section 9.3).
	Close bool
}

// Field returns the value of the first field named name (compared without
// case), and whether there is one.
func (r *Request) Field(name string) ([]byte, bool) {
	for i := range r.Fields {
		if n := r.Fields[i].Name; len(n) == len(name) && foldString(n, name) {
			return r.Fields[i].Value, true
		}
	}
	return nil, false
}

func (r *Request) reset() {
	fields := r.Fields[:0]
	*r = Request{Fields: fields}
}

// Limits bound what a request may cost before it is refused. A zero field
// takes its default.
type Limits struct {
	// MaxLine bounds the request line, CRLF excluded; longer gets 414
	// (URI Too Long). If zero, 8 KiB.
	MaxLine int
	// MaxHeaderBytes bounds the whole head, request line and final empty
	// line included; larger gets 431. If zero, 64 KiB, the proxy's
	// default.
	MaxHeaderBytes int
	// MaxFields bounds the number of header field lines, and of trailer
	// field lines; more gets 431. If zero, 100.
	MaxFields int
	// MaxTrailerBytes bounds a chunked body's trailer section, its final
	// empty line included; larger gets 431. If zero, 4 KiB.
	MaxTrailerBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = 8 << 10
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	if l.MaxFields <= 0 {
		l.MaxFields = 100
	}
	if l.MaxTrailerBytes <= 0 {
		l.MaxTrailerBytes = 4 << 10
	}
	return l
}

// ErrIncomplete is ParseHead's answer to a buffer that holds no complete
// head yet and breaks no rule or limit so far: read more and call again.
var ErrIncomplete = errors.New("h1wire: incomplete request head")

// Error is a request refused: Status is the response to send, Reason the
// rule it broke. The parser returns one shared value per rule, so that
// refusing allocates nothing and callers may compare with errors.Is.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return "h1wire: " + strconv.Itoa(e.Status) + ": " + e.Reason
}

func bad(reason string) *Error { return &Error{400, reason} }

// The rules, one error each.
var (
	errRequestLine  = bad("malformed request line: want method SP request-target SP HTTP-version")
	errMethod       = bad("method is not a token")
	errTargetByte   = bad("request-target has a byte other than a visible ASCII character, or a '#'")
	errTargetEscape = bad("request-target path has a '%' not followed by two hex digits")
	errTargetForm   = bad("invalid request-target form: origin-form, or absolute-form with http or https, authority-form only with CONNECT, '*' only with OPTIONS")
	errUserinfo     = bad("absolute-form request-target with userinfo")
	errVersion      = bad("malformed HTTP-version")
	errVersion505   = &Error{505, "HTTP version not supported: want HTTP/1.1 or HTTP/1.0"}
	errLineTooLong  = &Error{414, "request line too long"}
	errHeadTooLarge = &Error{431, "request head too large"}
	errTooMany      = &Error{431, "too many header fields"}
	errBareLF       = bad("line ends in a bare LF, not CRLF")
	errBareCR       = bad("bare CR not followed by LF")
	errObsFold      = bad("obsolete line folding (a field line starting with whitespace)")
	errSpaceColon   = bad("whitespace between field name and colon")
	errFieldName    = bad("field name is not a token, or has no colon")
	errFieldValue   = bad("NUL or control character in field value")
	errNoHost       = bad("HTTP/1.1 request without a Host field")
	errManyHosts    = bad("more than one Host field")
	errHost         = bad("invalid Host: want host or [IPv6] with an optional port")
	errHostDiffers  = bad("request-target authority differs from Host")
	errCLInvalid    = bad("invalid Content-Length: want 1 to 19 digits, at most 2^63-1")
	errCLDiffer     = bad("Content-Length fields differ")
	errCLTE         = bad("both Content-Length and Transfer-Encoding")
	errTE           = bad("Transfer-Encoding other than a single \"chunked\"")
	errTE10         = bad("Transfer-Encoding in an HTTP/1.0 request")
	errTrailerName  = bad("Trailer names a field that frames the message (Content-Length, Transfer-Encoding, Trailer, Host)")

	errChunkSize     = bad("invalid chunk size line: want hex digits, optional extensions, CRLF")
	errChunkOverflow = bad("chunk size over 16 hex digits or 2^63-1")
	errChunkLine     = bad("chunk size line too long")
	errChunkEnd      = bad("chunk data not followed by CRLF")
	errChunkOverhead = bad("chunked body with too much overhead for its data")
	errTrailerSize   = &Error{431, "trailer section too large"}
)
