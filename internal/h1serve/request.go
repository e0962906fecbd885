package h1serve

import (
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/internal/h1wire"
)

// expectation is what a request's Expect field asks.
type expectation uint8

const (
	expectNone expectation = iota
	expectContinue
	expectOther // answered 417
)

// newRequest builds the *http.Request of the head just read, and its
// response. The head is copied into one string that every field value,
// the target and the host are cut from.
func (c *conn) newRequest() (*response, *http.Request, error) {
	h := &c.rs.head
	base := h.Method
	end := 0
	extend := func(b []byte) {
		if o := cap(base) - cap(b); o >= 0 && o+len(b) > end && o+len(b) <= cap(base) {
			end = o + len(b)
		}
	}
	extend(h.Target)
	for i := range h.Fields {
		extend(h.Fields[i].Value)
		extend(h.Fields[i].Name)
	}
	s := string(base[:end])
	sub := func(b []byte) string {
		if o := cap(base) - cap(b); o >= 0 && o+len(b) <= len(s) {
			return s[o : o+len(b)]
		}
		return string(b)
	}

	w := &response{c: c, minor: h.Minor, closeAfter: h.Close}
	r := http.Request{
		Method:     method(h.Method, sub),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: h.Minor,
		RequestURI: sub(h.Target),
		Host:       sub(h.Host),
		RemoteAddr: c.remote,
		TLS:        c.tls,
		Close:      h.Close,
	}
	if h.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	u, err := requestURL(h, r.RequestURI, sub, &w.url)
	if err != nil {
		return nil, nil, err
	}
	r.URL = u
	if h.Form == h1wire.AbsoluteForm && u.Host != "" {
		r.Host = u.Host
	}

	hdr := make(http.Header, len(h.Fields))
	strs := w.vals[:]
	if len(h.Fields) > len(strs) {
		strs = make([]string, len(h.Fields))
	}
	var declared bool
	for i := range h.Fields {
		f := &h.Fields[i]
		name := canonical(f.Name, sub)
		switch name {
		case "Host":
			continue
		case "Transfer-Encoding":
			continue // r.TransferEncoding
		case "Trailer":
			declared = true
		case "Expect":
			if h.Minor == 1 && asciiEqualFold(f.Value, "100-continue") {
				if w.expect == expectNone {
					w.expect = expectContinue
				}
			} else {
				w.expect = expectOther
			}
			continue
		}
		v := sub(f.Value)
		if vv, ok := hdr[name]; ok {
			hdr[name] = append(vv, v)
			continue
		}
		strs[i] = v
		hdr[name] = strs[i : i+1 : i+1]
	}
	if pragma, ok := hdr["Pragma"]; ok && len(pragma) > 0 && pragma[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	r.Header = hdr

	c.bodyDone = true
	switch h.Body {
	case h1wire.BodyLength:
		r.ContentLength = h.ContentLength
		if h.ContentLength > 0 {
			r.Body = &body{c: c, w: w, remain: h.ContentLength}
			c.bodyDone = false
		}
	case h1wire.BodyChunked:
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		c.rs.chunk.Reset(c.br, c.lim)
		r.Body = &body{c: c, w: w, chunked: true}
		c.bodyDone = false
		if declared {
			r.Trailer = declaredTrailers(hdr)
		}
		delete(hdr, "Trailer")
	}
	if r.Body == nil {
		r.Body = http.NoBody
		if w.expect == expectContinue {
			w.expect = expectNone // nothing to continue to
		}
	}
	// A connection context that is never done (the own one, or values
	// over it: what ConnContext usually adds) needs no watching: the
	// request's is then the response's reqCtx.
	var ctx context.Context
	if c.ctx.Done() == nil {
		w.ctx.Context = c.ctx
		ctx, c.rctx, c.cancel = &w.ctx, &w.ctx, nil
	} else {
		ctx, c.cancel = context.WithCancel(c.ctx)
		c.rctx = nil
	}
	req := r.WithContext(ctx)
	if b, ok := req.Body.(*body); ok {
		b.req = req
	}
	w.req = req
	w.reqBody, _ = req.Body.(*body)
	return w, req, nil
}

func declaredTrailers(h http.Header) http.Header {
	t := make(http.Header)
	for _, v := range h["Trailer"] {
		forEachToken(v, func(name string) {
			t[textproto.CanonicalMIMEHeaderKey(name)] = nil
		})
	}
	return t
}

func forEachToken(v string, f func(string)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimSpace(v[:i])
		if tok != "" {
			f(tok)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// method returns the method as a constant when it is a common one.
func method(b []byte, sub func([]byte) string) string {
	switch string(b) {
	case "GET":
		return http.MethodGet
	case "HEAD":
		return http.MethodHead
	case "POST":
		return http.MethodPost
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "OPTIONS":
		return http.MethodOptions
	case "PATCH":
		return http.MethodPatch
	case "CONNECT":
		return http.MethodConnect
	}
	return sub(b)
}

// requestURL parses the request-target as net/http does
// (url.ParseRequestURI), without its cost for an origin-form target whose
// path needs no escaping: that URL is u, filled in.
func requestURL(h *h1wire.Request, target string, sub func([]byte) string, u *url.URL) (*url.URL, error) {
	switch h.Form {
	case h1wire.OriginForm:
		if plainPath(h.Path) {
			*u = url.URL{Path: sub(h.Path)}
			if h.Query != nil {
				u.RawQuery = sub(h.Query)
				u.ForceQuery = len(h.Query) == 0
			}
			return u, nil
		}
	case h1wire.AuthorityForm:
		*u = url.URL{Host: target}
		return u, nil
	}
	return url.ParseRequestURI(target)
}

// plainPath reports whether url.URL.EscapedPath gives p back unchanged from
// Path = p: no byte that url escapes in a path, and no escape.
func plainPath(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == '~', c == '/', c == '$', c == '&', c == '+',
			c == ',', c == ':', c == ';', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// commonNames are the canonical forms of the field names browsers and
// clients send most, so that a name sent in another case costs no string.
var commonNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Cookie", "Expect", "Host",
		"If-Modified-Since", "If-None-Match", "Origin", "Pragma", "Range", "Referer",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "Via",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Ch-Ua",
		"Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Upgrade-Insecure-Requests", "Priority", "Dnt",
		"Traceparent", "Grpc-Timeout", "Content-Encoding", "Forwarded",
	} {
		m[textproto.CanonicalMIMEHeaderKey(n)] = textproto.CanonicalMIMEHeaderKey(n)
	}
	return m
}()

// canonical returns a field name in net/http's canonical form: the name
// itself when it already is, else a common name's constant, else a new
// string.
func canonical(name []byte, sub func([]byte) string) string {
	upper := true
	canon := true
	for _, c := range name {
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canon = false
			break
		}
		upper = c == '-'
	}
	if canon {
		return sub(name)
	}
	if len(name) <= 32 {
		var buf [32]byte
		b := buf[:len(name)]
		upper = true
		for i, c := range name {
			switch {
			case upper && 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			case !upper && 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if n, ok := commonNames[string(b)]; ok {
			return n
		}
		return string(b)
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// body is a request body: Content-Length bytes or a chunked body, read
// from the connection's reader. It returns io.EOF exactly at the end, and
// io.ErrUnexpectedEOF for a connection closed before it.
type body struct {
	c       *conn
	w       *response
	req     *http.Request
	chunked bool

	// mu guards the fields below and reading: a handler may read the body
	// on another goroutine (a transport's) while the connection ends the
	// request.
	mu     sync.Mutex
	remain int64
	eof    bool
	closed bool
	err    error
	read   bool // a read was attempted
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	if !b.read {
		b.read = true
		if b.w.expect == expectContinue {
			b.w.sendContinue()
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.c.rs.chunk.Read(p)
		if err == io.EOF {
			b.trailers()
		}
	} else {
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err = b.c.br.Read(p)
		b.remain -= int64(n)
		switch {
		case b.remain == 0:
			err = io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	if err == io.EOF {
		b.eof = true
		b.c.bodyEnded()
	} else if err != nil {
		b.err = err
	}
	return n, err
}

// trailers copies the chunked body's trailer fields to the request.
func (b *body) trailers() {
	t := b.c.rs.chunk.Trailer
	if len(t) == 0 || b.req == nil {
		return
	}
	if b.req.Trailer == nil {
		b.req.Trailer = make(http.Header, len(t))
	}
	for _, f := range t {
		name := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		b.req.Trailer[name] = append(b.req.Trailer[name], string(f.Value))
	}
}

func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// discard reads the rest of the body, up to discardMax bytes, once the
// handler is done with it, and ends further reads. It reports whether the
// body was read to its end, so that the connection may be kept.
func (b *body) discard() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer func() { b.closed = true }()
	if b.eof {
		return true
	}
	if b.err != nil {
		return false
	}
	if !b.read && b.w.expect == expectContinue {
		return false // the client waits for a 100 Continue that will not come
	}
	b.closed = false
	b.read = true
	b.c.rwc.SetReadDeadline(time.Now().Add(b.c.srv.readHeaderTimeout()))
	lim := io.LimitReader(readerFunc(b.readLocked), discardMax)
	_, err := io.Copy(io.Discard, lim)
	return err == nil && b.eof
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

var _ io.ReadCloser = (*body)(nil)
