package h2serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its response. The fields under "guarded by
// c.mu" are shared by the connection's reader and the handler; the rest
// are the handler's. A stream is never reused: a handler may keep its
// request after it returns.
type stream struct {
	c     *conn
	id    uint32
	runFn func() // s.serve, made once

	// guarded by c.mu
	remoteDone    bool  // the client ended its side (END_STREAM), or the stream was reset
	localDone     bool  // the handler returned, or the stream was reset
	reset         bool  // a RST_STREAM was sent or received, or the connection closed
	resetErr      error // what reads and writes see once reset
	sendWindow    int64
	recvWindow    int64 // how much more DATA the client may send on the stream
	recvUnacked   int64 // consumed and not yet given back
	body          []byte
	bodyOff       int
	bodyErr       error // io.EOF after END_STREAM
	bodyClosed    bool
	received      int64
	declared      int64       // the request's Content-Length, -1 if none
	trailer       http.Header // Request.Trailer: the declared names, their values set at the body's io.EOF
	trailerValues http.Header // the declared trailers' values, as the client sent them
	waitingWindow bool

	bodyWake   chan struct{} // the reader tells a body Read that something changed
	windowWake chan struct{} // the reader tells a blocked Write that the window opened

	cancel context.CancelFunc
	req    *http.Request
	rw     responseWriter
	rbody  requestBody
	h      http.Handler

	counted bool // in c.open; guarded by c.mu

	// the body's reader goroutine's
	readDeadline time.Time
	readTimer    *time.Timer
	continueSent bool
	expect       bool
	// the writer's
	writeTimer *time.Timer
}

// newStream validates a request's header block (RFC 9113 section 8.3) and
// makes its stream, or returns the stream error that refuses it.
func (c *conn) newStream(f *http2.MetaHeadersFrame) (*stream, error) {
	id := f.StreamID
	malformed := http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	var method, scheme, authority, path string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		default: // :protocol (no SETTINGS_ENABLE_CONNECT_PROTOCOL), :status
			return nil, malformed
		}
	}
	connect := method == "CONNECT"
	switch {
	case !validMethod(method):
		return nil, malformed
	case connect && (scheme != "" || path != "" || authority == ""):
		return nil, malformed
	case !connect && (scheme == "" || path == ""):
		return nil, malformed
	case !connect && path[0] != '/' && (method != "OPTIONS" || path != "*"):
		return nil, malformed
	}
	regular := f.RegularFields()
	hdr := make(http.Header, len(regular))
	strs := make([]string, len(regular))
	declared := int64(-1)
	var cookies []string
	var trailerKeys []string
	for i, hf := range regular {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, malformed // connection-specific (RFC 9113 section 8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return nil, malformed
			}
		case "host":
			if authority == "" {
				authority = hf.Value
			}
			continue // Request.Host, as net/http
		case "content-length":
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || hf.Value[0] == '+' || declared >= 0 && n != declared {
				return nil, malformed
			}
			declared = n
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		case "trailer":
			trailerKeys = append(trailerKeys, hf.Value)
		}
		name := canonicalName(hf.Name)
		if vv, ok := hdr[name]; ok {
			hdr[name] = append(vv, hf.Value)
			continue
		}
		strs[i] = hf.Value
		hdr[name] = strs[i : i+1 : i+1]
	}
	if len(cookies) > 0 {
		// RFC 9113 section 8.2.3: split cookie fields join with "; ".
		hdr["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, malformed
	}
	end := f.StreamEnded()
	if end && declared > 0 {
		return nil, malformed // a Content-Length the stream does not carry
	}
	st := &stream{
		c:          c,
		id:         id,
		sendWindow: 0,
		recvWindow: streamWindow,
		declared:   declared,
		remoteDone: end,
		bodyWake:   make(chan struct{}, 1),
		windowWake: make(chan struct{}, 1),
		h:          c.srv.Handler,
	}
	c.mu.Lock()
	st.sendWindow = c.peerWindow
	c.mu.Unlock()
	if f.Truncated {
		st.h = http.HandlerFunc(headerListTooLong)
	}
	st.runFn = st.serve
	r := &http.Request{
		Method:     method,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     hdr,
		Host:       authority,
		RemoteAddr: c.remote,
		RequestURI: path,
		TLS:        c.tls,
	}
	if connect {
		r.URL = &url.URL{Host: authority}
		r.RequestURI = authority
	} else {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return nil, malformed
		}
		r.URL = u
	}
	if end {
		r.Body = http.NoBody
		st.bodyErr = io.EOF
	} else {
		st.rbody.st = st
		r.Body = &st.rbody
		r.ContentLength = declared
		if declared < 0 {
			r.ContentLength = -1
		}
		if len(trailerKeys) > 0 {
			st.trailer = declaredTrailers(trailerKeys)
			r.Trailer = st.trailer
		}
		if vv := hdr["Expect"]; len(vv) == 1 && strings.EqualFold(vv[0], "100-continue") {
			st.expect = true
		}
	}
	ctx, cancel := context.WithCancel(c.ctx)
	st.cancel = cancel
	st.req = r.WithContext(ctx)
	st.rw = responseWriter{st: st, declared: -1, head: method == "HEAD"}
	return st, nil
}

// headerListTooLong answers a request whose header list was over
// MaxHeaderBytes, as net/http does.
func headerListTooLong(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	w.Write([]byte("<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>"))
}

// declaredTrailers is the Request.Trailer of the names a request's Trailer
// fields declare, their values to come.
func declaredTrailers(fields []string) http.Header {
	t := make(http.Header)
	for _, f := range fields {
		for _, k := range strings.Split(f, ",") {
			k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
				continue // not allowed as trailers (RFC 9110 section 6.5.1)
			}
			t[k] = nil
		}
	}
	return t
}

// onTrailers handles a HEADERS frame on an open stream: its trailers.
func (c *conn) onTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.remoteDone {
		if st.rw.ended {
			// Both sides ended it: closed for the client, whose HEADERS
			// on it is a connection error (RFC 9113 section 5.1).
			return http2.ConnectionError(http2.ErrCodeStreamClosed)
		}
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeStreamClosed}
	}
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	if st.declared >= 0 && st.received != st.declared {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	if st.trailer != nil {
		for _, hf := range f.RegularFields() {
			k := canonicalName(hf.Name)
			if _, ok := st.trailer[k]; ok {
				if st.trailerValues == nil {
					st.trailerValues = make(http.Header)
				}
				st.trailerValues[k] = append(st.trailerValues[k], hf.Value)
			}
		}
	}
	st.remoteDone = true
	st.bodyErr = io.EOF
	c.closeIfDoneLocked(st)
	st.wakeBody()
	return nil
}

// serve runs the handler, then ends the response and the stream.
func (st *stream) serve() {
	returned := false
	defer func() {
		if !returned {
			v := recover()
			if v != nil && v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				st.c.srv.logf("h2serve: panic serving %s: %v\n%s", st.c.remote, v, buf)
			}
			st.abort()
		} else {
			st.rw.finish()
		}
		st.cancel()
		st.done()
	}()
	st.h.ServeHTTP(&st.rw, st.req)
	returned = true
}

// abort resets a stream whose handler panicked, unless it ended.
func (st *stream) abort() {
	c := st.c
	c.mu.Lock()
	skip := st.reset || st.rw.ended
	c.mu.Unlock()
	if !skip {
		c.resetStream(st.id, http2.ErrCodeInternal, true)
	}
}

// done ends the handler's side of the stream: a request body the client
// is still sending is refused with RST_STREAM(NO_ERROR) (RFC 9113 section
// 8.1), what it sent and nobody read goes back to the connection's window,
// and a connection that has no handler left goes idle.
func (st *stream) done() {
	c := st.c
	c.mu.Lock()
	st.localDone = true
	refuse := !st.remoteDone && !st.reset
	if refuse {
		st.reset = true
		st.remoteDone = true
		st.resetErr = errStreamReset
		if st.bodyErr == nil {
			st.bodyErr = errStreamReset // a read still going on elsewhere ends
		}
		st.wakeBody()
	}
	st.dropBodyLocked()
	if refuse || st.reset {
		delete(c.streams, st.id)
	} else {
		c.closeIfDoneLocked(st)
	}
	inc := c.connCreditLocked()
	st.uncountLocked()
	c.handlers--
	if c.handlers == 0 {
		c.active.Store(false)
		c.srv.setState(c.rwc, http.StateIdle)
		if !c.closed {
			c.idleLocked()
		}
	}
	c.mu.Unlock()
	if refuse || inc > 0 {
		c.startWrite()
		if refuse {
			c.wfr.WriteRSTStream(st.id, http2.ErrCodeNo)
		}
		if inc > 0 {
			c.wfr.WriteWindowUpdate(0, uint32(inc))
		}
		c.endWrite(true)
	}
}

// uncountLocked takes the stream out of the count MaxConcurrentStreams
// bounds, once: when its END_STREAM is about to be sent, since from then
// on the client may see it closed and open another (RFC 9113 section
// 5.1.2), or when its handler returns.
func (st *stream) uncountLocked() {
	if st.counted {
		st.counted = false
		st.c.open--
	}
}

// abortLocked ends a stream that was reset or whose connection closed:
// its context is canceled and its reads and writes fail with err.
func (st *stream) abortLocked(err error) {
	st.reset = true
	st.resetErr = err
	st.remoteDone = true
	st.localDone = true
	if st.bodyErr == nil || st.bodyErr == io.EOF && st.bodyOff < len(st.body) {
		st.bodyErr = err
	}
	st.dropBodyLocked()
	st.cancel()
	st.wakeBody()
	st.wakeWindow()
}

// dropBodyLocked gives what the client sent and nobody read back to the
// connection's window.
func (st *stream) dropBodyLocked() {
	if n := len(st.body) - st.bodyOff; n > 0 {
		st.c.recvUnacked += int64(n)
	}
	st.body, st.bodyOff = nil, 0
}

func (st *stream) wakeBody() {
	select {
	case st.bodyWake <- struct{}{}:
	default:
	}
}

func (st *stream) wakeWindow() {
	select {
	case st.windowWake <- struct{}{}:
	default:
	}
}

// requestBody is a request's body: what the reader put in the stream's
// buffer, given back to the client's window as it is read.
type requestBody struct{ st *stream }

func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	if st.expect && !st.continueSent {
		st.continueSent = true
		st.sendContinue()
	}
	c.mu.Lock()
	for {
		if st.bodyClosed {
			c.mu.Unlock()
			return 0, errBodyClosed
		}
		if st.bodyOff < len(st.body) {
			n := copy(p, st.body[st.bodyOff:])
			st.bodyOff += n
			if st.bodyOff == len(st.body) {
				st.body, st.bodyOff = st.body[:0], 0
			}
			st.recvUnacked += int64(n)
			c.recvUnacked += int64(n)
			var sinc int64
			if !st.remoteDone && st.recvUnacked >= streamWindow/2 {
				sinc = st.recvUnacked
				st.recvWindow += sinc
				st.recvUnacked = 0
			}
			cinc := c.connCreditLocked()
			c.mu.Unlock()
			c.writeWindowUpdates(st.id, sinc, cinc)
			return n, nil
		}
		if st.bodyErr != nil {
			err := st.bodyErr
			tv := st.trailerValues
			st.trailerValues = nil
			c.mu.Unlock()
			// The trailers reach Request.Trailer on the handler's
			// goroutine, with the body's end, as net/http documents.
			for k, vv := range tv {
				st.trailer[k] = vv
			}
			return 0, err
		}
		if len(p) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		c.mu.Unlock()
		if !st.waitBody() {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
	}
}

// waitBody waits for the reader's news or the read deadline, and reports
// whether the deadline had not passed.
func (st *stream) waitBody() bool {
	if st.readDeadline.IsZero() {
		<-st.bodyWake
		return true
	}
	d := time.Until(st.readDeadline)
	if d <= 0 {
		return false
	}
	return waitFor(st.bodyWake, &st.readTimer, d)
}

// Close ends the body: the client is asked to stop sending (when the
// handler returns) and what it sent is dropped.
func (b *requestBody) Close() error {
	c := b.st.c
	c.mu.Lock()
	b.st.bodyClosed = true
	b.st.dropBodyLocked()
	inc := c.connCreditLocked()
	c.mu.Unlock()
	c.writeWindowUpdates(0, 0, inc)
	return nil
}

// sendContinue sends "100 Continue" before a body's first read
// (Expect: 100-continue), unless the body is all there.
func (st *stream) sendContinue() {
	c := st.c
	c.mu.Lock()
	skip := st.received > 0 || st.remoteDone
	c.mu.Unlock()
	if skip {
		return
	}
	c.startWrite()
	c.hbuf.Reset()
	c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: "100"})
	c.writeBlockLocked(st.id, false)
	c.endWrite(true)
}

// validMethod reports whether m is a token (RFC 9110 section 9.1).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// commonCanonical maps the lowercase field names browsers send most to
// net/http's canonical form, so that they cost no string.
var commonCanonical = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Content-Length", "Content-Type", "Cookie", "Expect", "If-Modified-Since",
		"If-None-Match", "If-Range", "Origin", "Pragma", "Range", "Referer", "Te", "Trailer",
		"User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-User", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
		"Upgrade-Insecure-Requests", "Priority", "Dnt", "Traceparent", "Tracestate",
		"Grpc-Timeout", "Grpc-Encoding", "Grpc-Accept-Encoding", "Content-Encoding", "Forwarded",
		"Accept-Charset", "Access-Control-Request-Method", "Access-Control-Request-Headers",
		"If-Match", "If-Unmodified-Since", "Max-Forwards", "Baggage",
	} {
		m[strings.ToLower(n)] = n
	}
	return m
}()

// canonicalName returns net/http's form of a lowercase field name.
func canonicalName(lower string) string {
	if n, ok := commonCanonical[lower]; ok {
		return n
	}
	return textproto.CanonicalMIMEHeaderKey(lower)
}

// commonLower maps the canonical response field names most sent to their
// lowercase form (RFC 9113 section 8.2.1).
var commonLower = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
		"Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Alt-Svc", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires", "Last-Modified",
		"Link", "Location", "Referrer-Policy", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Trailer", "Vary", "Www-Authenticate", "X-Content-Type-Options",
		"X-Frame-Options", "X-Request-Id", "X-Xss-Protection", "Grpc-Status", "Grpc-Message",
		"Grpc-Encoding", "Permissions-Policy", "Cross-Origin-Opener-Policy",
		"Cross-Origin-Resource-Policy", "Cross-Origin-Embedder-Policy", "Server-Timing", "Timing-Allow-Origin",
	} {
		m[n] = strings.ToLower(n)
	}
	return m
}()

// lowerName returns the lowercase form of a response field name; the
// uncommon ones are kept per connection (at most 64).
func (c *conn) lowerNameLocked(name string) string {
	if l, ok := commonLower[name]; ok {
		return l
	}
	if l, ok := c.lower[name]; ok {
		return l
	}
	l := strings.ToLower(name)
	if c.lower == nil {
		c.lower = make(map[string]string)
	}
	if len(c.lower) < 64 {
		c.lower[name] = l
	}
	return l
}

// statusValue is the :status field of code.
func statusValue(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 429:
		return "429"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(code)
}

// checkWriteHeaderCode panics on a status net/http would panic on.
func checkWriteHeaderCode(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
}
