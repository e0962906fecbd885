package h2serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Flow control and buffering, the edge's side of every connection.
const (
	// streamWindow is the receive window of each stream
	// (SETTINGS_INITIAL_WINDOW_SIZE) and connWindow the connection's, as
	// net/http's defaults: a 1 MiB upload in flight per connection at most,
	// which bounds what a connection can make the edge buffer.
	streamWindow = 1 << 20
	connWindow   = 1 << 20
	// initialWindow is the protocol's window before SETTINGS
	// (RFC 9113 section 6.9.2).
	initialWindow = 65535
	// maxWindow is the largest a flow-control window may be (2^31-1).
	maxWindow = 1<<31 - 1
	// maxFrameSize is the largest frame read: the protocol's initial
	// SETTINGS_MAX_FRAME_SIZE, which the edge never raises, as NGINX and
	// HAProxy keep it (no connection makes it buffer a 16 MiB frame).
	maxFrameSize = 16 << 10
	// readBufSize and writeBufSize are the connection's buffers: reads come
	// a TLS record (16 KiB at most) at a time; the write buffer holds two
	// full DATA frames, so that a 32 KiB chunk of a body goes out in one
	// write(2).
	readBufSize  = 4 << 10
	writeBufSize = 2 * (maxFrameSize + 9)
	// linger is how long a connection that sent its last GOAWAY keeps
	// reading (and dropping) what the client still sends before it
	// closes: closing a socket with unread data makes the kernel send a
	// reset, which can make the client lose the GOAWAY before it read it.
	linger = time.Second
)

// conn is one HTTP/2 connection. Its goroutine (serve) reads the frames;
// handlers run on the server's workers and write their own frames.
//
// Two locks: mu guards the streams and the flow-control state; wmu the
// write side. Nothing takes wmu while it holds mu.
type conn struct {
	srv    *Server
	rwc    net.Conn
	tls    *tls.ConnectionState
	remote string
	ctx    context.Context
	br     *bufio.Reader
	fr     *http2.Framer // reads only (serve's goroutine)

	// wmu guards the fields below it.
	wmu sync.Mutex
	// writers counts the goroutines writing or waiting for wmu: the last
	// of a burst flushes (endWrite).
	writers   atomic.Int32
	pending   atomic.Bool // bytes are left in bw (see flushPending)
	wantFlush bool
	bw        *bufio.Writer // from writers while a stream is open or bytes are buffered, else nil
	wfr       *http2.Framer // writes to bw
	henc      *hpack.Encoder
	hbuf      bytes.Buffer
	werr      error             // the first write error: the connection is broken
	lower     map[string]string // response field names lowercased, beyond the common ones
	peerFrame uint32            // the client's SETTINGS_MAX_FRAME_SIZE, for HEADERS

	// mu guards the fields below it.
	mu          sync.Mutex
	streams     map[uint32]*stream // open, half-closed, or with a handler running and not reset
	maxStreamID uint32             // the highest stream the client opened
	handlers    uint32             // handlers running
	open        uint32             // handlers whose stream the client can still see open: the count MaxConcurrentStreams bounds
	active      atomic.Bool        // handlers > 0, for endWrite (which holds wmu, not mu)
	sendWindow  int64              // the connection's window for the DATA we send
	peerWindow  int64              // the client's SETTINGS_INITIAL_WINDOW_SIZE
	dataFrame   int64              // the client's SETTINGS_MAX_FRAME_SIZE, for DATA
	recvWindow  int64              // how much more DATA the client may send on the connection
	recvUnacked int64              // DATA consumed and not yet given back with a WINDOW_UPDATE
	goingAway   bool               // a GOAWAY was sent or received: no new stream
	goAwayID    uint32             // the last stream taken when goingAway was set
	closed      bool
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{
		srv:        s,
		rwc:        rwc,
		remote:     rwc.RemoteAddr().String(),
		streams:    make(map[uint32]*stream),
		sendWindow: initialWindow,
		peerWindow: initialWindow,
		dataFrame:  maxFrameSize,
		recvWindow: connWindow,
		peerFrame:  maxFrameSize,
	}
	if tc, ok := rwc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		c.tls = &cs
	}
	var ctx context.Context = &baseCtx{c: c}
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, rwc)
	}
	c.ctx = ctx
	c.br = bufio.NewReaderSize(rwc, readBufSize)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetMaxReadFrameSize(maxFrameSize)
	c.fr.MaxHeaderListSize = s.maxHeaderBytes()
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.wfr = http2.NewFramer(bufferedWriter{c}, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// baseCtx is the root of a connection's context: the values net/http's
// server puts there, without a layer per value.
type baseCtx struct{ c *conn }

func (b *baseCtx) Value(key any) any {
	switch key {
	case http.ServerContextKey:
		return b.c.srv.HTTPServer
	case http.LocalAddrContextKey:
		return b.c.rwc.LocalAddr()
	}
	return nil
}

func (b *baseCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (b *baseCtx) Done() <-chan struct{}       { return nil }
func (b *baseCtx) Err() error                  { return nil }
func (b *baseCtx) String() string              { return "h2serve.connContext" }

// writerPool holds the write buffers of connections that have no stream
// open: an idle connection holds none.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}

// bufferedWriter is what the write framer writes to: the connection's
// buffer of the moment (startWrite takes one when there is none).
type bufferedWriter struct{ c *conn }

func (b bufferedWriter) Write(p []byte) (int, error) { return b.c.bw.Write(p) }

// deadlineWriter writes to the connection with a fresh write deadline
// each time: a write that makes no progress for WriteTimeout fails, and
// with it the connection, instead of holding the write lock for ever.
type deadlineWriter struct{ c *conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.c.rwc.SetWriteDeadline(time.Now().Add(d.c.srv.writeTimeout()))
	return d.c.rwc.Write(p)
}

// errors the handlers' reads and writes see.
var (
	errStreamReset = errors.New("h2serve: the stream was reset")
	errConnClosed  = errors.New("h2serve: the connection closed")
	errBodyClosed  = errors.New("h2serve: the request body was closed")
)

// serve runs the connection: the server's preface, the client's, then
// its frames until it closes.
func (c *conn) serve() {
	s := c.srv
	s.setState(c.rwc, http.StateNew)
	defer c.teardown()
	c.rwc.SetReadDeadline(time.Now().Add(s.readHeaderTimeout()))
	c.startWrite()
	c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: s.maxStreams()},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: s.maxHeaderBytes()},
	)
	c.wfr.WriteWindowUpdate(0, connWindow-initialWindow)
	if c.endWrite(true) != nil {
		return
	}
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return
	}
	f, err := c.fr.ReadFrame()
	if err != nil {
		if protocolError(err) {
			c.failed(err)
			return
		}
		c.readFailed(err)
		return
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		c.connError(http2.ErrCodeProtocol, "the client preface's first frame is not SETTINGS")
		return
	}
	if err := c.frame(f); err != nil {
		c.failed(err)
		return
	}
	c.mu.Lock()
	c.idleLocked()
	c.mu.Unlock()
	if s.shutting.Load() {
		c.goAway()
	}
	for {
		if c.br.Buffered() == 0 {
			c.flushPending()
		}
		f, err := c.fr.ReadFrame()
		switch {
		case err == nil:
			err = c.frame(f)
		case !protocolError(err):
			c.readFailed(err)
			return
		}
		if err != nil && c.failed(err) {
			return
		}
	}
}

// protocolError reports whether a ReadFrame error is the client's breach
// of the protocol, not the connection's end.
func protocolError(err error) bool {
	var se http2.StreamError
	var ce http2.ConnectionError
	return errors.As(err, &se) || errors.As(err, &ce) || errors.Is(err, http2.ErrFrameTooLarge)
}

// readFailed ends the connection after reading failed: it closed, or
// timed out (idle: then it gets a GOAWAY first, or lingering after one).
func (c *conn) readFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		idle := c.handlers == 0 && !c.goingAway
		c.mu.Unlock()
		if idle {
			c.startWrite()
			c.wfr.WriteGoAway(c.lastStream(), http2.ErrCodeNo, nil)
			c.endWrite(true)
		}
	}
}

// failed handles a protocol error: a stream error resets its stream and
// the connection goes on; a connection error sends a GOAWAY. It reports
// whether the connection ends.
func (c *conn) failed(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.resetStream(se.StreamID, se.Code, c.br.Buffered() == 0)
		return false
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.connError(http2.ErrCode(ce), "")
		return true
	}
	if errors.Is(err, http2.ErrFrameTooLarge) {
		c.connError(http2.ErrCodeFrameSize, "frame too large")
		return true
	}
	c.connError(http2.ErrCodeInternal, "")
	return true
}

// lastStream returns the highest stream the client opened.
func (c *conn) lastStream() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxStreamID
}

// connError sends a GOAWAY with code and lingers (see linger).
func (c *conn) connError(code http2.ErrCode, reason string) {
	c.mu.Lock()
	c.goingAway = true
	c.goAwayID = c.maxStreamID
	id := c.maxStreamID
	c.mu.Unlock()
	var debug []byte
	if reason != "" {
		debug = []byte(reason)
	}
	c.startWrite()
	c.wfr.WriteGoAway(id, code, debug)
	c.endWrite(true)
	c.rwc.SetReadDeadline(time.Now().Add(linger))
	io.Copy(io.Discard, c.br)
}

// goAway starts the graceful close: a GOAWAY naming the last stream
// taken, no stream after it, and the connection closed (after linger) once
// its streams have ended.
func (c *conn) goAway() {
	c.mu.Lock()
	if c.goingAway || c.closed {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	c.goAwayID = c.maxStreamID
	id := c.goAwayID
	c.mu.Unlock()
	c.startWrite()
	c.wfr.WriteGoAway(id, http2.ErrCodeNo, nil)
	c.endWrite(true)
	c.mu.Lock()
	if c.handlers == 0 {
		c.idleLocked()
	}
	c.mu.Unlock()
}

// idleLocked sets the read deadline of a connection that has no handler
// running: the idle timeout, or the linger of one going away.
func (c *conn) idleLocked() {
	d := c.srv.idleTimeout()
	if c.goingAway {
		d = linger
	}
	c.rwc.SetReadDeadline(time.Now().Add(d))
}

// teardown closes the connection and ends its streams: their handlers see
// their contexts canceled and their reads and writes fail.
func (c *conn) teardown() {
	c.rwc.Close()
	c.mu.Lock()
	c.closed = true
	for id, st := range c.streams {
		st.abortLocked(errConnClosed)
		delete(c.streams, id)
	}
	c.mu.Unlock()
	c.srv.setState(c.rwc, http.StateClosed)
}

// startWrite takes the write lock; endWrite gives it back.
func (c *conn) startWrite() {
	c.writers.Add(1)
	c.wmu.Lock()
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(deadlineWriter{c})
	}
}

// endWrite gives the write lock back. It flushes the buffer when this
// writer or one before it in the burst asked for it (flush) and no other
// writer waits: that one flushes when it is done, so the streams that
// finish together share one write. What is left buffered is flushed by a
// later writer, or by the reader before it waits for the client
// (flushPending). It returns the connection's write error, if any.
func (c *conn) endWrite(flush bool) error {
	if flush {
		c.wantFlush = true
	}
	if c.writers.Add(-1) == 0 && c.wantFlush && c.werr == nil {
		c.wantFlush = false
		if err := c.bw.Flush(); err != nil {
			c.werr = err
		}
	}
	if c.werr == nil && c.bw.Buffered() > 0 {
		c.pending.Store(true)
	} else {
		c.pending.Store(false)
	}
	if c.werr == nil {
		// A write that filled the buffer may have failed: bufio keeps
		// the error, and an empty Write returns it.
		if _, err := c.bw.Write(nil); err != nil {
			c.werr = err
		}
	}
	err := c.werr
	if c.bw.Buffered() == 0 && !c.active.Load() {
		// Idle: the buffer goes back to the pool (a stream that opens
		// meanwhile takes one at its first write).
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
	c.wmu.Unlock()
	if err != nil {
		c.rwc.Close() // the reader sees it and tears the connection down
	}
	return err
}

// flushPending flushes what writers left buffered: the reader calls it
// before it waits for more of the client's frames, so that nothing the
// client may be waiting for (a PING's answer, a SETTINGS ACK, the start
// of a body) stays in the buffer.
func (c *conn) flushPending() {
	if c.pending.Load() {
		c.startWrite()
		c.endWrite(true)
	}
}

// frame handles one frame the client sent. The error is a StreamError or
// a ConnectionError.
func (c *conn) frame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.startWrite()
			c.wfr.WritePing(true, f.Data)
			c.endWrite(c.br.Buffered() == 0)
		}
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	case *http2.GoAwayFrame:
		// The client opens no more streams: the connection ends once
		// those it has are done.
		c.mu.Lock()
		if !c.goingAway {
			c.goingAway = true
			c.goAwayID = c.maxStreamID
			if c.handlers == 0 {
				c.idleLocked()
			}
		}
		c.mu.Unlock()
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients do not push (RFC 9113 section 8.4)
	}
	// Frames of unknown types are ignored (RFC 9113 section 5.5).
	return nil
}

// idleStream reports whether id names a stream the client never opened
// (RFC 9113 section 5.1: most frames on one are a connection error).
func (c *conn) idleStreamLocked(id uint32) bool {
	return id > c.maxStreamID || id%2 == 0
}

func (c *conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.mu.Unlock()
		return c.onTrailers(st, f)
	}
	if id <= c.maxStreamID {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	c.maxStreamID = id
	if c.goingAway {
		c.mu.Unlock()
		return nil // after our GOAWAY's last stream: not processed, the client may retry it
	}
	full := c.open >= c.srv.maxStreams()
	c.mu.Unlock()
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if full {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	st, err := c.newStream(f)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.streams[id] = st
	st.counted = true
	c.open++
	c.handlers++
	if c.handlers == 1 {
		c.active.Store(true)
		c.rwc.SetReadDeadline(time.Time{})
		c.srv.setState(c.rwc, http.StateActive)
	}
	c.mu.Unlock()
	c.srv.workers.Go(st.runFn)
	return nil
}

func (c *conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length) // padding counts (RFC 9113 section 6.9.1)
	data := f.Data()
	c.mu.Lock()
	if c.idleStreamLocked(id) {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if n > c.recvWindow {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	st := c.streams[id]
	var err error
	switch {
	case st == nil || st.remoteDone:
		err = http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	case n > st.recvWindow:
		err = http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	case st.declared >= 0 && st.received+int64(len(data)) > st.declared:
		err = http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol} // more than its Content-Length
	}
	if err != nil {
		c.recvUnacked += n // nobody reads these bytes: the connection gets them back
		inc := c.connCreditLocked()
		c.mu.Unlock()
		c.writeWindowUpdates(0, 0, inc)
		return err
	}
	st.recvWindow -= n
	if pad := n - int64(len(data)); pad > 0 {
		c.recvUnacked += pad
		st.recvUnacked += pad
	}
	st.received += int64(len(data))
	if len(data) > 0 {
		if st.bodyClosed {
			c.recvUnacked += int64(len(data))
		} else {
			st.body = append(st.body, data...)
		}
	}
	if f.StreamEnded() {
		if st.declared >= 0 && st.received != st.declared {
			c.mu.Unlock()
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol} // less than its Content-Length
		}
		st.remoteDone = true
		st.bodyErr = io.EOF
		c.closeIfDoneLocked(st)
	}
	st.wakeBody()
	inc := c.connCreditLocked()
	var sinc int64
	if !st.remoteDone && st.recvUnacked >= streamWindow/2 {
		sinc = st.recvUnacked
		st.recvWindow += sinc
		st.recvUnacked = 0
	}
	c.mu.Unlock()
	c.writeWindowUpdates(id, sinc, inc)
	return nil
}

// connCreditLocked returns the WINDOW_UPDATE increment the connection is
// due (half its window consumed), counted as given, or 0.
func (c *conn) connCreditLocked() int64 {
	if c.recvUnacked < connWindow/2 {
		return 0
	}
	inc := c.recvUnacked
	c.recvWindow += inc
	c.recvUnacked = 0
	return inc
}

// writeWindowUpdates sends the WINDOW_UPDATE frames for a stream's and the
// connection's increments, those that are not zero.
func (c *conn) writeWindowUpdates(id uint32, streamInc, connInc int64) {
	if streamInc == 0 && connInc == 0 {
		return
	}
	c.startWrite()
	if connInc > 0 {
		c.wfr.WriteWindowUpdate(0, uint32(connInc))
	}
	if streamInc > 0 {
		c.wfr.WriteWindowUpdate(id, uint32(streamInc))
	}
	c.endWrite(true)
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			c.mu.Lock()
			delta := int64(s.Val) - c.peerWindow
			c.peerWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					c.mu.Unlock()
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.wakeWindow()
			}
			c.mu.Unlock()
		case http2.SettingMaxFrameSize:
			c.mu.Lock()
			c.dataFrame = int64(s.Val)
			c.mu.Unlock()
			c.wmu.Lock()
			c.peerFrame = s.Val
			c.wmu.Unlock()
		case http2.SettingHeaderTableSize:
			c.wmu.Lock()
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
			c.wmu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.startWrite()
	c.wfr.WriteSettingsAck()
	c.endWrite(c.br.Buffered() == 0)
	return nil
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	id, inc := f.StreamID, int64(f.Increment)
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		for _, st := range c.streams {
			if st.waitingWindow {
				st.wakeWindow()
			}
		}
		return nil
	}
	if c.idleStreamLocked(id) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := c.streams[id]
	if st == nil {
		return nil // a closed stream's: allowed (RFC 9113 section 6.9)
	}
	st.sendWindow += inc
	if st.sendWindow > maxWindow {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.wakeWindow()
	return nil
}

func (c *conn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	if c.idleStreamLocked(f.StreamID) {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := c.streams[f.StreamID]; st != nil {
		st.abortLocked(errStreamReset)
		delete(c.streams, f.StreamID)
	}
	inc := c.connCreditLocked()
	c.mu.Unlock()
	c.writeWindowUpdates(0, 0, inc)
	return nil
}

// resetStream sends RST_STREAM for id with code and ends the stream, if
// it is open. flush is false for the reader while more frames of the
// client's are buffered (it flushes before it waits).
func (c *conn) resetStream(id uint32, code http2.ErrCode, flush bool) {
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		st.abortLocked(errStreamReset)
		delete(c.streams, id)
	}
	inc := c.connCreditLocked()
	c.mu.Unlock()
	c.startWrite()
	c.wfr.WriteRSTStream(id, code)
	if inc > 0 {
		c.wfr.WriteWindowUpdate(0, uint32(inc))
	}
	c.endWrite(flush)
}

// closeIfDoneLocked drops st from the open streams once both sides ended
// it.
func (c *conn) closeIfDoneLocked(st *stream) {
	if st.remoteDone && st.localDone {
		delete(c.streams, st.id)
	}
}
