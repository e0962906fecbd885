package h1serve

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// framing is how a response body is delimited (RFC 9112 section 6).
type framing uint8

const (
	framePending framing = iota // not decided: the body so far is staged
	frameNone                   // no body: HEAD, 1xx, 204, 304
	frameLength                 // Content-Length
	frameChunked
	frameClose // the connection's close ends the body (HTTP/1.0)
)

// response is the http.ResponseWriter of one request. Like net/http's, it
// may be used by the handler's goroutine only, except that the request
// body may send a 100 Continue from another.
type response struct {
	c       *conn
	req     *http.Request
	reqBody *body
	minor   int
	expect  expectation
	header  http.Header

	status   int // the final status; 0 until WriteHeader
	framing  framing
	length   int64 // a Content-Length the handler set; -1 if none
	written  int64 // body bytes the handler wrote
	staged   int   // body bytes in wb.stage
	wb       *wbuf
	err      error    // the first write error
	trailers []string // the names the handler declared in Trailer
	conn     []string // the handler's Connection field

	closeAfter bool
	unread     bool // the request body was not read to its end
	hijacked   bool
	isHead     bool

	// mu guards started and continued: the head's start, and a 100
	// Continue sent from the body's goroutine.
	mu        sync.Mutex
	started   bool
	continued bool

	// The memory of the request that lives as long as it, whatever keeps
	// the request (a response is made for one request, never reused): its
	// URL, unless url.ParseRequestURI made it, the values of a head of up
	// to 8 fields, and its context (see reqCtx).
	url  url.URL
	vals [8]string
	ctx  reqCtx
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *response) writer() *bufio.Writer {
	if w.wb == nil {
		w.wb = writers.Get().(*wbuf)
		w.wb.bw.Reset(w.c.out)
	}
	return w.wb.bw
}

func (w *response) release() {
	if w.wb == nil {
		return
	}
	w.wb.bw.Reset(nil)
	writers.Put(w.wb)
	w.wb = nil
}

// sendContinue answers Expect: 100-continue on the body's first read.
func (w *response) sendContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.continued {
		return
	}
	w.continued = true
	if _, err := w.c.out.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil && w.err == nil {
		w.err = err
	}
}

func (w *response) WriteHeader(code int) {
	if w.hijacked || w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.status = code
	w.start()
}

// informational sends a 1xx response (103 Early Hints, a 100 Continue the
// handler sends itself) with the header as it stands. HTTP/1.0 clients get
// none (RFC 9110 section 15.2).
func (w *response) informational(code int) {
	if w.minor == 0 {
		return
	}
	w.mu.Lock()
	if code == http.StatusContinue {
		if w.continued {
			w.mu.Unlock()
			return
		}
		w.continued = true
	}
	w.mu.Unlock()
	bw := w.writer()
	w.wb.head = statusLine(w.wb.head[:0], 1, code)
	bw.Write(w.wb.head)
	for k, vv := range w.header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		writeField(bw, k, vv)
	}
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
}

// start writes the status line and the handler's fields, and the framing
// when it is known already.
func (w *response) start() {
	w.mu.Lock()
	w.started = true
	w.mu.Unlock()
	bw := w.writer()
	w.wb.head = statusLine(w.wb.head[:0], w.minor, w.status)
	bw.Write(w.wb.head)
	w.length = -1
	bodyless := w.status == http.StatusNoContent || w.status == http.StatusNotModified ||
		w.status == http.StatusSwitchingProtocols
	w.isHead = w.req.Method == http.MethodHead
	_, haveDate := w.header["Date"]
	// Declared trailers need the chunked coding: a Content-Length beside
	// them is dropped.
	chunkedForTrailers := len(w.header["Trailer"]) > 0 && w.minor == 1
	for k, vv := range w.header {
		switch k {
		case "Transfer-Encoding":
			continue // the server frames the body
		case "Connection":
			w.conn = vv
			for _, v := range vv {
				if hasToken(v, "close") {
					w.closeAfter = true
				}
			}
			continue
		case "Content-Length":
			if w.status == http.StatusNoContent || w.status == http.StatusSwitchingProtocols ||
				chunkedForTrailers && !bodyless && !w.isHead {
				continue
			}
			if len(vv) == 1 {
				if n, err := strconv.ParseInt(vv[0], 10, 64); err == nil && n >= 0 {
					w.length = n
				}
			}
			if w.length < 0 {
				continue // not a length: dropped, the body is framed otherwise
			}
		case "Trailer":
			for _, v := range vv {
				forEachToken(v, func(name string) { w.trailers = append(w.trailers, http.CanonicalHeaderKey(name)) })
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		writeField(bw, k, vv)
	}
	if !haveDate {
		bw.Write(w.c.srv.currentDate())
	}
	switch {
	case bodyless || w.isHead:
		w.framing = frameNone
	case w.length >= 0:
		w.framing = frameLength
	default:
		return // decided by the body's size or a flush
	}
	w.endHead()
}

// endHead writes the Connection field and the end of the head.
func (w *response) endHead() {
	bw := w.wb.bw
	if w.c.srv.shutting.Load() {
		w.closeAfter = true
	}
	switch {
	case w.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case w.minor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	case len(w.conn) > 0:
		writeField(bw, "Connection", w.conn)
	}
	bw.WriteString("\r\n")
}

// commit decides the framing of a body the handler did not declare: its
// length when the handler has ended with all of it staged, else chunked
// (HTTP/1.1) or delimited by the close (HTTP/1.0).
func (w *response) commit(done bool) {
	bw := w.wb.bw
	switch {
	case done && len(w.trailers) == 0:
		w.framing = frameLength
		w.length = int64(w.staged)
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(w.staged))
		bw.WriteString("\r\n")
	case w.minor == 1:
		w.framing = frameChunked
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		w.framing = frameClose
		w.closeAfter = true
	}
	w.endHead()
	if w.staged > 0 {
		w.writeBody(w.wb.stage[:w.staged])
		w.staged = 0
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.framing == frameNone {
		if w.isHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.framing == frameLength && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.framing == framePending {
		if w.staged+len(p) <= stageSize {
			w.staged += copy(w.wb.stage[w.staged:], p)
			return len(p), nil
		}
		w.commit(false)
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *response) writeBody(p []byte) {
	if len(p) == 0 || w.err != nil {
		return
	}
	bw := w.wb.bw
	if w.framing == frameChunked {
		var b [18]byte
		h := strconv.AppendInt(b[:0], int64(len(p)), 16)
		h = append(h, '\r', '\n')
		bw.Write(h)
		bw.Write(p)
		_, w.err = bw.WriteString("\r\n")
		return
	}
	_, w.err = bw.Write(p)
}

func (w *response) Flush() { w.FlushError() }

// FlushError sends the head and the body so far (http.ResponseController).
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.framing == framePending {
		w.commit(false)
	}
	if w.err != nil {
		return w.err
	}
	w.err = w.wb.bw.Flush()
	return w.err
}

// finish ends the response once the handler has returned: the rest of the
// request body, the head if not sent, the chunked body's end and trailers.
func (w *response) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.reqBody != nil && !w.reqBody.discard() {
		w.closeAfter, w.unread = true, true
	}
	if w.framing == framePending {
		w.commit(true)
	}
	bw := w.wb.bw
	switch w.framing {
	case frameLength:
		if w.written < w.length {
			w.closeAfter = true // the client sees the body cut short
		}
	case frameChunked:
		bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			if vv, ok := w.header[k]; ok {
				writeField(bw, k, vv)
			}
		}
		for k, vv := range w.header {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				writeField(bw, k[len(http.TrailerPrefix):], vv)
			}
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	if w.err != nil {
		w.closeAfter = true
	}
	w.release()
}

// Hijack hands the connection to the handler with a reader that holds
// what the client sent after the request (http.Hijacker).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	if w.wb != nil {
		if w.framing == framePending && w.status != 0 {
			w.commit(false)
		}
		w.wb.bw.Flush()
	}
	c.stopWatch()
	w.hijacked = true
	c.rwc.SetDeadline(time.Time{})
	c.acquireReader()
	if c.src.hasByte {
		c.br.Peek(1) // the watch's byte into the reader, without a read
	}
	bw := bufio.NewWriterSize(c.rwc, writerSize)
	if w.wb != nil {
		bw = w.wb.bw // handed over, not pooled again
		w.wb = nil
	}
	br := c.br
	c.br = nil
	rwc := c.detach()
	c.srv.setState(rwc, http.StateHijacked)
	return rwc, bufio.NewReadWriter(br, bw), nil
}

// SetReadDeadline sets the connection's read deadline
// (http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	if w.hijacked {
		return http.ErrHijacked
	}
	w.c.mu.Lock()
	w.c.deadlineLeft = false // the handler's deadline stands
	w.c.mu.Unlock()
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline
// (http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error {
	if w.hijacked {
		return http.ErrHijacked
	}
	return w.c.rwc.SetWriteDeadline(t)
}

// EnableFullDuplex is a no-op: the request body may always be read while
// the response is written (http.ResponseController).
func (w *response) EnableFullDuplex() error { return nil }

// writeField writes name: value lines, dropping a name that is not a token
// and turning CR and LF in a value into spaces, as net/http does.
func writeField(bw *bufio.Writer, name string, vv []string) {
	if !validName(name) {
		return
	}
	for _, v := range vv {
		bw.WriteString(name)
		bw.WriteString(": ")
		if strings.ContainsAny(v, "\r\n") {
			v = newlineToSpace.Replace(v)
		}
		bw.WriteString(trimSpace(v))
		bw.WriteString("\r\n")
	}
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isToken[s[i]] {
			return false
		}
	}
	return true
}

var isToken = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// hasToken reports whether the comma list v holds token, without case.
func hasToken(v, token string) bool {
	found := false
	forEachToken(v, func(t string) {
		if strings.EqualFold(t, token) {
			found = true
		}
	})
	return found
}

// dateLine is a Date field for one second, shared by every response of
// that second (Server.date, see currentDate).
type dateLine struct {
	line []byte // "Date: ...\r\n"
}

// currentDate returns the Date field of a response that starts now: the
// server's line for the current second, formatted once a second as NGINX
// does. A line is cleared by a timer at the end of its second, so that a
// response reads the clock only to format the next second's, and none is
// served later than that timer fires (it would take a process starved of
// CPU for a second to make a Date a second stale).
func (s *Server) currentDate() []byte {
	if d := s.date.Load(); d != nil {
		return d.line
	}
	now := time.Now()
	b := make([]byte, 0, 40)
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	d := &dateLine{line: b}
	if s.date.CompareAndSwap(nil, d) {
		time.AfterFunc(time.Second-time.Duration(now.Nanosecond()), func() { s.date.CompareAndSwap(d, nil) })
	}
	return b
}
