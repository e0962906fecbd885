package h1wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
)

// Byte classes, as tables: the parser tests every byte of a head once.
var (
	tchar    [256]bool // token characters (RFC 9110 section 5.6.2)
	vchar    [256]bool // field value bytes: VCHAR, obs-text, SP, HTAB (RFC 9110 section 5.5)
	target   [256]bool // request-target bytes: VCHAR except '#'
	hostchar [256]bool // reg-name bytes: unreserved and sub-delims (RFC 3986 section 3.2.2), no '%'
	hexval   [256]int8 // hex digit value, or -1
)

func init() {
	for c := range 256 {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		tchar[c] = alnum || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
		vchar[c] = b == '\t' || b >= 0x20 && b != 0x7f
		target[c] = 0x21 <= b && b <= 0x7e && b != '#'
		hostchar[c] = alnum || bytes.IndexByte([]byte("-._~!$&'()*+,;="), b) >= 0
		hexval[c] = -1
		switch {
		case '0' <= b && b <= '9':
			hexval[c] = int8(b - '0')
		case 'a' <= b && b <= 'f':
			hexval[c] = int8(b - 'a' + 10)
		case 'A' <= b && b <= 'F':
			hexval[c] = int8(b - 'A' + 10)
		}
	}
}

// ParseHead parses the request head at the start of b into r and returns
// its length, through the empty line that ends it; the body (if any)
// follows. r's slices alias b. If b holds no complete head and breaks no
// rule or limit so far, the error is ErrIncomplete; any other error is an
// *Error to answer with its Status.
//
// Lines end in CRLF, never a bare LF or CR (RFC 9112 section 2.2). Header
// field names are tokens followed directly by ':'; values hold no NUL or
// other control character but HTAB; obs-fold is refused (section 5.2). A
// Content-Length is digits; several must be identical; Transfer-Encoding
// must be one field "chunked", only in HTTP/1.1, never with Content-Length
// (section 6). An HTTP/1.1 request has exactly one Host, an HTTP/1.0
// request at most one; an absolute-form or authority-form target names the
// same authority as Host (section 3.2). The target's bytes are visible
// ASCII without '#', and its path's '%' escapes are complete.
func ParseHead(b []byte, r *Request, lim Limits) (int, error) {
	lim = lim.withDefaults()
	r.reset()
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > lim.MaxLine+1 { // a CR may still come
			return 0, errLineTooLong
		}
		return 0, ErrIncomplete
	}
	if i == 0 || b[i-1] != '\r' {
		return 0, errBareLF
	}
	if i-1 > lim.MaxLine {
		return 0, errLineTooLong
	}
	if err := r.parseRequestLine(b[:i-1]); err != nil {
		return 0, err
	}
	pos, err := parseFields(b, i+1, &r.Fields, lim, errHeadTooLarge)
	if err != nil {
		return 0, err
	}
	if err := r.frame(); err != nil {
		return 0, err
	}
	return pos, nil
}

// parseRequestLine parses method SP request-target SP HTTP-version.
func (r *Request) parseRequestLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return lineError(line, errRequestLine)
	}
	r.Method = line[:sp]
	if len(r.Method) == 0 {
		return errRequestLine
	}
	for _, c := range r.Method {
		if !tchar[c] {
			return lineError(r.Method, errMethod)
		}
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return lineError(rest, errRequestLine)
	}
	r.Target = rest[:sp]
	for _, c := range r.Target {
		if !target[c] {
			return lineError(r.Target, errTargetByte)
		}
	}
	switch v := rest[sp+1:]; string(v) {
	case "HTTP/1.1":
		r.Minor = 1
	case "HTTP/1.0":
		r.Minor = 0
	default:
		if len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]) {
			return errVersion505
		}
		return lineError(v, errVersion)
	}
	return nil
}

// lineError returns errBareCR if s holds a CR, else err: a CR inside a line
// is the one byte the line rules name on their own.
func lineError(s []byte, err *Error) *Error {
	if bytes.IndexByte(s, '\r') >= 0 {
		return errBareCR
	}
	return err
}

// parseFields parses the field lines of b from pos up to and including the
// empty line that ends the head, appending them to *fields, and returns
// the position after it. A head over lim.MaxHeaderBytes is tooLarge; one
// that has not ended yet is ErrIncomplete.
func parseFields(b []byte, pos int, fields *[]Field, lim Limits, tooLarge error) (int, error) {
	for {
		if pos > lim.MaxHeaderBytes {
			return 0, tooLarge
		}
		rest := b[pos:]
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			if len(b) >= lim.MaxHeaderBytes {
				return 0, tooLarge
			}
			return 0, ErrIncomplete
		}
		if pos+j+1 > lim.MaxHeaderBytes {
			return 0, tooLarge
		}
		if j == 0 || rest[j-1] != '\r' {
			return 0, errBareLF
		}
		line := rest[:j-1]
		pos += j + 1
		if len(line) == 0 {
			return pos, nil
		}
		if len(*fields) == lim.MaxFields {
			return 0, errTooMany
		}
		f, err := parseField(line)
		if err != nil {
			return 0, err
		}
		*fields = append(*fields, f)
	}
}

// parseField parses one field line, CRLF excluded:
// field-name ":" OWS field-value OWS (RFC 9112 section 5).
func parseField(line []byte) (Field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Field{}, errObsFold
	}
	k := 0
	for ; k < len(line) && line[k] != ':'; k++ {
		if c := line[k]; !tchar[c] {
			switch c {
			case ' ', '\t':
				return Field{}, errSpaceColon
			case '\r':
				return Field{}, errBareCR
			}
			return Field{}, errFieldName
		}
	}
	if k == 0 || k == len(line) {
		return Field{}, errFieldName
	}
	v := trimOWS(line[k+1:])
	if err := checkValue(v); err != nil {
		return Field{}, err
	}
	return Field{Name: line[:k], Value: v}, nil
}

// checkValue checks that a field value holds only VCHAR, obs-text, SP and
// HTAB, eight bytes at a time while they are printable ASCII.
func checkValue(v []byte) error {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := binary.LittleEndian.Uint64(v[i:])
		// The high bit of some byte is set in below if a byte is under
		// 0x20, in del if a byte is 0x7f, in w if a byte is not ASCII.
		below := (w - 0x20*ones) &^ w & highs
		del := ((w ^ 0x7f*ones) - ones) &^ (w ^ 0x7f*ones) & highs
		if below|del|w&highs == 0 {
			continue
		}
		if err := checkValueBytes(v[i : i+8]); err != nil {
			return err
		}
	}
	return checkValueBytes(v[i:])
}

func checkValueBytes(v []byte) error {
	for _, c := range v {
		if !vchar[c] {
			if c == '\r' {
				return errBareCR
			}
			return errFieldValue
		}
	}
	return nil
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// framing is what the fields that frame a message say, across all of them
// (RFC 9112 sections 6 and 9.3): how many Host fields and the last one's
// value, how many Transfer-Encoding fields, the Content-Length value, and
// the connection options close and keep-alive.
type framing struct {
	hosts, tes       int
	host, cl         []byte
	close, keepAlive bool
}

// scanFraming reads the framing fields of fields, refusing what no message
// may carry whatever its kind: a Trailer naming a framing field, a
// malformed or differing Content-Length, a Transfer-Encoding other than
// "chunked".
func scanFraming(fields []Field) (framing, error) {
	var fr framing
	for i := range fields {
		f := &fields[i]
		switch len(f.Name) {
		case 4:
			if equalFold(f.Name, "host") {
				fr.hosts++
				fr.host = f.Value
			}
		case 7:
			if equalFold(f.Name, "trailer") && forbiddenTrailerList(f.Value) {
				return fr, errTrailerName
			}
		case 10:
			if equalFold(f.Name, "connection") {
				forEachToken(f.Value, func(t []byte) {
					fr.close = fr.close || equalFold(t, "close")
					fr.keepAlive = fr.keepAlive || equalFold(t, "keep-alive")
				})
			}
		case 14:
			if equalFold(f.Name, "content-length") {
				if _, ok := parseLength(f.Value); !ok {
					return fr, errCLInvalid
				}
				if fr.cl != nil && !bytes.Equal(fr.cl, f.Value) {
					return fr, errCLDiffer
				}
				fr.cl = f.Value
			}
		case 17:
			if equalFold(f.Name, "transfer-encoding") {
				fr.tes++
				if !equalFold(f.Value, "chunked") {
					return fr, errTE
				}
			}
		}
	}
	return fr, nil
}

// frame applies the rules that span fields: Host, the target's form and
// authority, the body's framing, the connection's persistence.
func (r *Request) frame() error {
	fr, err := scanFraming(r.Fields)
	if err != nil {
		return err
	}
	hosts, tes, cl, closeOpt, keepAlive := fr.hosts, fr.tes, fr.cl, fr.close, fr.keepAlive
	if hosts > 0 {
		r.Host = fr.host
	}
	switch {
	case hosts > 1:
		return errManyHosts
	case hosts == 0 && r.Minor == 1:
		return errNoHost
	case hosts == 1 && !validAuthority(r.Host, false):
		return errHost
	}
	if err := r.parseTarget(hosts == 1); err != nil {
		return err
	}

	switch {
	case tes > 0 && r.Minor == 0:
		return errTE10
	case tes > 1:
		return errTE
	case tes == 1 && cl != nil:
		return errCLTE
	case tes == 1:
		r.Body = BodyChunked
	case cl != nil:
		r.Body = BodyLength
		r.ContentLength, _ = parseLength(cl)
	}
	r.Close = r.Minor == 1 && closeOpt || r.Minor == 0 && (closeOpt || !keepAlive)
	return nil
}

// parseTarget sets Form, Path and Query from Target, checks the form
// against the method and the authority against Host, and sets Host from
// the authority for an HTTP/1.0 request without one.
func (r *Request) parseTarget(haveHost bool) error {
	t := r.Target
	connect := string(r.Method) == "CONNECT"
	switch {
	case t[0] == '/':
		if connect {
			return errTargetForm
		}
		r.Form = OriginForm
		return r.splitPath(t)
	case string(t) == "*":
		if string(r.Method) != "OPTIONS" {
			return errTargetForm
		}
		r.Form = AsteriskForm
		return nil
	case connect:
		if !validAuthority(t, true) {
			return errTargetForm
		}
		r.Form = AuthorityForm
		return r.sameAuthority(t, haveHost)
	}
	var rest []byte
	switch {
	case hasPrefixFold(t, "http://"):
		rest = t[len("http://"):]
	case hasPrefixFold(t, "https://"):
		rest = t[len("https://"):]
	default:
		return errTargetForm
	}
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	auth := rest[:end]
	if bytes.IndexByte(auth, '@') >= 0 {
		return errUserinfo
	}
	if !validAuthority(auth, false) {
		return errTargetForm
	}
	r.Form = AbsoluteForm
	if err := r.sameAuthority(auth, haveHost); err != nil {
		return err
	}
	return r.splitPath(rest[end:])
}

// sameAuthority checks a target's authority against Host, or takes it as
// Host when an HTTP/1.0 request has none.
func (r *Request) sameAuthority(auth []byte, haveHost bool) error {
	if !haveHost {
		r.Host = auth
		return nil
	}
	if len(auth) != len(r.Host) || !equalFoldBytes(auth, r.Host) {
		return errHostDiffers
	}
	return nil
}

// splitPath splits path-abempty [ "?" query ] and checks the path's
// escapes, which is where a router and an upstream must read the same
// bytes; the query is passed on as it came.
func (r *Request) splitPath(p []byte) error {
	if q := bytes.IndexByte(p, '?'); q >= 0 {
		r.Query = p[q+1:]
		p = p[:q]
	}
	r.Path = p
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			if i+2 >= len(p) || hexval[p[i+1]] < 0 || hexval[p[i+2]] < 0 {
				return errTargetEscape
			}
			i += 2
		}
	}
	return nil
}

// validAuthority reports whether a is host [":" port], host a reg-name of
// unreserved and sub-delim characters or an IP literal in brackets, port 1
// to 5 digits; needPort requires the port (authority-form).
func validAuthority(a []byte, needPort bool) bool {
	if len(a) == 0 {
		return false
	}
	var i int
	if a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 2 {
			return false
		}
		for _, c := range a[1:end] {
			if hexval[c] < 0 && c != ':' && c != '.' {
				return false
			}
		}
		// An IPv6 address, without zone (RFC 3986 section 3.2.2); the
		// one check here that allocates, for a rare kind of Host.
		if ip, err := netip.ParseAddr(string(a[1:end])); err != nil || !ip.Is6() {
			return false
		}
		i = end + 1
	} else {
		for i < len(a) && hostchar[a[i]] {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(a) {
		return !needPort
	}
	port := a[i+1:]
	if a[i] != ':' || len(port) == 0 || len(port) > 5 {
		return false
	}
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: 1 to 19 digits, at most
// 2^63-1 (RFC 9110 section 8.6; a list of values is refused, not split).
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// forbiddenTrailerList reports whether a Trailer value names a field that
// frames the message, which must not arrive in a trailer.
func forbiddenTrailerList(v []byte) bool {
	bad := false
	forEachToken(v, func(t []byte) {
		for _, name := range [...]string{"content-length", "transfer-encoding", "trailer", "host"} {
			bad = bad || equalFold(t, name)
		}
	})
	return bad
}

// forbiddenTrailer reports whether a trailer field name is one that frames
// the message.
func forbiddenTrailer(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding") ||
		equalFold(name, "trailer") || equalFold(name, "host")
}

// forEachToken calls f with each non-empty element of a comma-separated
// list, without surrounding whitespace.
func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if t = trimOWS(t); len(t) > 0 {
			f(t)
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold reports whether b equals lowerName (lower case) without regard
// to ASCII case.
func equalFold(b []byte, lowerName string) bool {
	if len(b) != len(lowerName) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lowerName[i] {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func foldString(a []byte, b string) bool {
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, lowerPrefix string) bool {
	return len(b) >= len(lowerPrefix) && equalFold(b[:len(lowerPrefix)], lowerPrefix)
}
