package h2serve

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// responseWriter is a stream's http.ResponseWriter. Its head goes out
// with the first body bytes, a Flush or the handler's end (so that a
// response without a body is one HEADERS frame); body bytes go into the
// connection's buffer as DATA frames as far as the flow-control windows
// allow, and out with the burst's last writer (conn.endWrite), a Flush,
// or a full buffer.
type responseWriter struct {
	st          *stream
	header      http.Header
	status      int
	wroteHeader bool  // the final status is set
	sentHeader  bool  // its HEADERS frame is written
	ended       bool  // END_STREAM is written (guarded by c.mu for abort's read)
	head        bool  // a HEAD request's: the body is dropped
	declared    int64 // the Content-Length set, -1 if none
	written     int64
	trailers    bool // a Trailer field was set: END_STREAM waits for them
	err         error
}

func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	checkWriteHeaderCode(code)
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			w.informational(code)
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if vv := w.header["Content-Length"]; len(vv) == 1 {
		if n, err := strconv.ParseInt(vv[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
	_, w.trailers = w.header["Trailer"]
}

// informational sends a 1xx answer with the fields set so far (103 Early
// Hints, or a 100 the handler sends itself).
func (w *responseWriter) informational(code int) {
	c := w.st.c
	if w.st.isReset() {
		return
	}
	c.startWrite()
	c.encodeHeadLocked(code, w.header, false)
	c.writeBlockLocked(w.st.id, false)
	c.endWrite(true)
}

func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	if w.head {
		w.written += int64(len(p))
		return len(p), nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	w.written += int64(len(p))
	// The body's last byte by its Content-Length ends the stream, unless
	// trailers are to follow.
	end := w.declared == w.written && !w.trailers
	if end {
		w.markEnded()
	}
	if err := w.st.send(p, end); err != nil {
		w.err = err
		return 0, err
	}
	return len(p), nil
}

func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// send writes p as DATA frames, HEADERS first if not sent, waiting for
// the flow-control windows as needed; end sets END_STREAM on the last.
func (st *stream) send(p []byte, end bool) error {
	c := st.c
	w := &st.rw
	for len(p) > 0 {
		n, frame, err := st.reserve(len(p))
		if err != nil {
			return err
		}
		chunk := p[:n]
		p = p[n:]
		c.startWrite()
		if !w.sentHeader {
			w.sentHeader = true
			c.encodeHeadLocked(w.status, w.header, true)
			c.writeBlockLocked(st.id, false)
		}
		for len(chunk) > 0 {
			k := min(len(chunk), frame)
			c.wfr.WriteData(st.id, end && len(p) == 0 && k == len(chunk), chunk[:k])
			chunk = chunk[k:]
		}
		// A body's bytes go out at its end, or 4 KiB at a time as
		// net/http's handler-side buffer sends them.
		if err := c.endWrite(end && len(p) == 0 || n >= 4<<10); err != nil {
			return err
		}
	}
	return nil
}

// reserve waits until the stream's and the connection's send windows
// allow some of n bytes, and takes them: it returns how many, and the
// largest DATA frame the client takes.
func (st *stream) reserve(n int) (int, int, error) {
	c := st.c
	c.mu.Lock()
	for {
		if st.reset {
			err := st.resetErr
			c.mu.Unlock()
			return 0, 0, err
		}
		if allow := min(st.sendWindow, c.sendWindow); allow > 0 {
			k := min(int64(n), allow)
			st.sendWindow -= k
			c.sendWindow -= k
			frame := int(c.dataFrame)
			c.mu.Unlock()
			return int(k), frame, nil
		}
		st.waitingWindow = true
		c.mu.Unlock()
		// What is buffered goes out before the wait: the client opens its
		// window on what it has received.
		c.startWrite()
		c.endWrite(true)
		ok := st.waitWindow()
		c.mu.Lock()
		st.waitingWindow = false
		if !ok {
			c.mu.Unlock()
			// The client kept its window shut for WriteTimeout.
			c.resetStream(st.id, http2.ErrCodeCancel, true)
			return 0, 0, os.ErrDeadlineExceeded
		}
	}
}

// waitWindow waits for the window to open, at most WriteTimeout; it
// reports whether it did not time out.
func (st *stream) waitWindow() bool {
	return waitFor(st.windowWake, &st.writeTimer, st.c.srv.writeTimeout())
}

// waitFor waits for wake at most d, with the timer *t (made on first use,
// then reset), and reports whether wake came first.
func waitFor(wake <-chan struct{}, t **time.Timer, d time.Duration) bool {
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-wake:
		(*t).Stop()
		return true
	case <-(*t).C:
		return false
	}
}

func (st *stream) isReset() bool {
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	return st.reset
}

func (w *responseWriter) Flush() { w.FlushError() }

// FlushError sends the head, if not sent, and what is buffered.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	st := w.st
	if st.isReset() {
		w.err = errStreamReset
		return w.err
	}
	c := st.c
	c.startWrite()
	if !w.sentHeader && !w.ended {
		w.sentHeader = true
		c.encodeHeadLocked(w.status, w.header, true)
		c.writeBlockLocked(st.id, false)
	}
	if err := c.endWrite(true); err != nil {
		w.err = err
	}
	return w.err
}

// finish ends the response after the handler returned: the head if not
// sent (with END_STREAM when there is nothing else), an empty DATA frame
// with END_STREAM, or the trailers.
func (w *responseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	st := w.st
	c := st.c
	c.mu.Lock()
	skip := w.ended || st.reset
	c.mu.Unlock()
	if skip || w.err != nil {
		return
	}
	trailers := w.trailerFields()
	w.markEnded()
	c.startWrite()
	if !w.sentHeader {
		w.sentHeader = true
		c.encodeHeadLocked(w.status, w.header, true)
		c.writeBlockLocked(st.id, len(trailers) == 0)
	} else if len(trailers) == 0 {
		c.wfr.WriteData(st.id, true, nil)
	}
	if len(trailers) > 0 {
		c.hbuf.Reset()
		for _, f := range trailers {
			c.henc.WriteField(f)
		}
		c.writeBlockLocked(st.id, true)
	}
	c.endWrite(true)
}

// markEnded records that END_STREAM is sent, before it is: from then on
// the client may see the stream closed (see onTrailers).
func (w *responseWriter) markEnded() {
	w.st.c.mu.Lock()
	w.ended = true
	w.st.uncountLocked()
	w.st.c.mu.Unlock()
}

// trailerFields returns the trailers set: the declared ones (Trailer) and
// those under http.TrailerPrefix.
func (w *responseWriter) trailerFields() []hpack.HeaderField {
	var fs []hpack.HeaderField
	add := func(k string, vv []string) {
		k = strings.ToLower(k)
		if !httpguts.ValidTrailerHeader(k) {
			return
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				fs = append(fs, hpack.HeaderField{Name: k, Value: v})
			}
		}
	}
	if w.trailers {
		for _, decl := range w.header["Trailer"] {
			for _, k := range strings.Split(decl, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				if vv, ok := w.header[k]; ok && k != "" {
					add(k, vv)
				}
			}
		}
	}
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(strings.TrimPrefix(k, http.TrailerPrefix), vv)
		}
	}
	return fs
}

// SetReadDeadline bounds the request body's reads (http.ResponseController).
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	w.st.readDeadline = t
	return nil
}

// SetWriteDeadline is accepted and ignored: the connection's WriteTimeout
// bounds every write that makes no progress.
func (w *responseWriter) SetWriteDeadline(time.Time) error { return nil }

// EnableFullDuplex is a no-op: HTTP/2 reads and writes a stream both ways
// at once.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// encodeHeadLocked HPACK-encodes a response head into c.hbuf: :status,
// the fields fit for HTTP/2 (lowercase; none of the connection-specific
// ones, RFC 9113 section 8.2.2; no trailer yet), and a Date if the handler
// set none and final is set.
func (c *conn) encodeHeadLocked(code int, h http.Header, final bool) {
	c.hbuf.Reset()
	c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusValue(code)})
	_, haveDate := h["Date"]
	for k, vv := range h {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		name := c.lowerNameLocked(k)
		if !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				c.henc.WriteField(hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	if final && !haveDate {
		c.henc.WriteField(hpack.HeaderField{Name: "date", Value: c.srv.currentDate(time.Now())})
	}
}

// writeBlockLocked writes the header block in c.hbuf as a HEADERS frame
// and the CONTINUATION frames it needs.
func (c *conn) writeBlockLocked(id uint32, end bool) {
	block := c.hbuf.Bytes()
	max := int(c.peerFrame)
	first := block[:min(len(block), max)]
	block = block[len(first):]
	c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		k := min(len(block), max)
		c.wfr.WriteContinuation(id, k == len(block), block[:k])
		block = block[k:]
	}
}
